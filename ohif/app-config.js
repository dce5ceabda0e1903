/**
 * OHIF Viewer 3.x configuration for dicom-emulator (the local Azure Health Data Services DICOM emulator).
 *
 * Use it as OHIF's app-config.js (docker-compose.ohif.yml mounts it into the OHIF image; for a static build
 * such as the npm package @ohif/app, replace dist/app-config.js with it). If the emulator is not at
 * http://localhost:8080, change DICOM_EMULATOR below. The emulator answers CORS for any origin by default
 * (`--cors-origins`).
 *
 * Why these settings (the emulator behaves like Azure's DICOM service):
 *  - supportsWildcard: false. OHIF would wrap every name/ID filter in `*…*`; Azure has no wildcard
 *    matching, so `PatientName=*doe*` matches nothing (204). Run the emulator with `--loose` to allow
 *    wildcards, and only then set it to true.
 *  - supportsFuzzyMatching: true. Azure's `fuzzymatching=true` is prefix matching on the words of a
 *    person name: typing "doe" in the study list finds "Doe^John".
 *  - The study list's instance count reads 0: Azure (and the emulator) return the computed
 *    NumberOfStudyRelatedInstances only when a search asks for it with includefield, and OHIF's study
 *    search never does (its includefield list is fixed). The viewer's series list asks, and shows counts.
 *  - staticWado: false. The emulator is a full DICOMweb server (not a static file tree): series-level
 *    metadata and per-frame retrieval work as in Azure.
 *  - dicomUploadEnabled: true. OHIF's "Upload" sends STOW-RS (POST /v2/studies), which the emulator
 *    stores as Azure would.
 */
const DICOM_EMULATOR = 'http://localhost:8080/v2';

window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'dicom-emulator',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dicom-emulator',
      configuration: {
        friendlyName: 'dicom-emulator (Azure DICOM service emulator)',
        name: 'dicom-emulator',
        wadoUriRoot: DICOM_EMULATOR,
        qidoRoot: DICOM_EMULATOR,
        wadoRoot: DICOM_EMULATOR,
        qidoSupportsIncludeField: false,
        supportsReject: false,
        supportsWildcard: false,
        supportsFuzzyMatching: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true, relativeResolution: 'studies' },
        dicomUploadEnabled: true,
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
