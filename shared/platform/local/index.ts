export { loadOrCreateAppSecret } from './app-secret.js';
export { ManualClock, isManualClock } from './clock.js';
export { LocalSecretStore, SecretNotFoundError } from './secret-store.js';
export { LocalTokenSigner } from './token-signer.js';
export { LocalMailSender } from './mail.js';
