// Test hooks the pages publish for the browser tests (tests/e2e) to read their state.
interface Window {
  __psc119?: Record<string, unknown>;
  __room?: unknown;
}
