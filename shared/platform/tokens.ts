/**
 * The one token estimate, for text no tokenizer has counted: quota reservations before a call, cost
 * limits while output streams, and results of providers that report no counts (which say so with
 * `tokensEstimated`). The common rule of thumb for English and code: about four characters per token.
 */
export const CHARS_PER_TOKEN = 4;

export function tokensForChars(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

export function estimateTokens(text: string): number {
  return tokensForChars(text.length);
}
