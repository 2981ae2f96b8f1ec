export * from './messages.js';
export { parseAgentFrame, parseControllerFrame, type Parsed } from './parse.js';
export { DiffHistory, compose } from './resume.js';
export { boundReport, REPORT_SUMMARY_KEY, type ReportEntry } from './report.js';
export { encodeInParts, MAX_PARTS, PartAssembler } from './parts.js';
