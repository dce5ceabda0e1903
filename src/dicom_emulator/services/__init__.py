"""Use cases shared by every front (DICOMweb routes, DIMSE handlers, jobs)."""
