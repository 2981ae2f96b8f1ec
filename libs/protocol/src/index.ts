export * from './messages.js';
export { parseAgentFrame, parseControllerFrame, type Parsed } from './parse.js';
export { DiffHistory, compose } from './resume.js';
