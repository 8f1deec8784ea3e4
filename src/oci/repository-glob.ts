/** @module oci/repository-glob — repository patterns as auth.rules and verify: write them. */

/** `*` matches any characters, `/` included: `xing/*` is everything under xing/. */
export function repositoryPattern(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}
