import type { MailSender } from '../ports.js';
import type { Deps } from '../runtime.js';

/** Outbound email (port `mail`); see queue.ts for why each port has its own module. */
export function mailSender(deps: Pick<Deps, 'mail'>): MailSender {
  return deps.mail;
}
