// Where the run view (run-view.ts) puts a run's facts into the cached report's index.html and
// report.md. HTML comments: invisible in a browser and in rendered Markdown (a CI job summary of
// the cached report.md shows nothing of them). Input text can never form one: the renderers
// escape every `<` that comes from a file, a param or a name.
export const RUN_MARK = {
  /** After the pipeline's name in the page's sub-title / report.md's first line. */
  header: '<!--pipe:run-header-->',
  /** At the end of index.html's navigation links. */
  nav: '<!--pipe:run-nav-->',
  /** Where the run's sections go: before the end of index.html's main, at the end of report.md. */
  body: '<!--pipe:run-->',
  /** index.html's footer text between these two is the cached page's; the run view replaces it. */
  footerStart: '<!--pipe:run-footer-->',
  footerEnd: '<!--/pipe:run-footer-->',
} as const;
