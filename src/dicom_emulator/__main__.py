from __future__ import annotations

from dicom_emulator.cli import main

raise SystemExit(main())
