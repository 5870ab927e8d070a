// What each role may do, mirrored from the server's `role_allows`
// (crates/ignis-auth/src/authorize.rs). The console only uses it to hide or
// disable what the role cannot use; the server decides.

/** @typedef {'read_functions'|'write_functions'|'invoke'|'read_logs'|'read_metrics'|'read_system'|'read_namespaces'|'manage_namespaces'|'manage_keys'|'read_audit'|'session'} Action */

const DEVELOPER = ['read_functions', 'write_functions', 'invoke', 'read_logs', 'read_metrics', 'read_system', 'read_namespaces', 'session'];
const VIEWER = ['read_functions', 'read_logs', 'read_metrics', 'read_system', 'read_namespaces', 'session'];
const INVOKER = ['invoke', 'read_namespaces', 'session'];

/**
 * @param {string | undefined} role
 * @param {Action} action
 */
export function roleAllows(role, action) {
  switch (role) {
    case 'admin':
      return true;
    case 'developer':
      return DEVELOPER.includes(action);
    case 'viewer':
      return VIEWER.includes(action);
    case 'invoker':
      return INVOKER.includes(action);
    default:
      return false;
  }
}

/** Actions on the whole server need a key for every namespace. */
const SYSTEM = ['manage_keys', 'read_audit', 'manage_namespaces'];

/**
 * Whether the session may take `action` (in `namespace`, when given).
 * @param {{role: string, namespaces: '*' | string[]} | null | undefined} who
 * @param {Action} action
 * @param {string} [namespace]
 */
export function can(who, action, namespace) {
  if (!who || !roleAllows(who.role, action)) return false;
  const all = who.namespaces === '*';
  if (SYSTEM.includes(action) && !all) return false;
  if (namespace !== undefined && !all && !who.namespaces.includes(namespace)) return false;
  return true;
}

/** Whether the key sees every namespace (system-wide series need it). */
export function seesAll(who) {
  return Boolean(who) && who.namespaces === '*';
}

/** The page a role lands on after login. */
export function homeOf(who) {
  return roleAllows(who?.role, 'read_metrics') ? '/' : '/invoke';
}
