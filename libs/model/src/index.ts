export * from './domain.js';
export * from './ipv4.js';
export * from './mac.js';
export * from './policy.js';
