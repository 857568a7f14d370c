export { compileAllowList, compileIdentityMatch, type AllowSpec, type IdentityMatchSpec, type IdentityPredicate } from './identity-match.js';
export { compileGlob, compileTextMatch, type TextMatchSpec, type TextMatcher } from './string-match.js';
export { compileAuthorizer, DEFAULT_ROUTE, ROUTE_OVERRIDE_HEADERS, withoutParameters, type Authorizer, type AuthorizationSpec, type Decision, type Route, type RouteSpec } from './routes.js';
export {
  createQuarantine,
  parseQuarantineEntry,
  parseQuarantineFile,
  type Quarantine,
  type QuarantineEntry,
  type QuarantineKind,
  type QuarantineSource,
} from './quarantine.js';
export * from './limits/index.js';
