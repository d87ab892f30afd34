/**
 * The local provider's tokenizer: deterministic counts for the offline provider (the estimate for
 * text nothing has counted is `estimateTokens` in platform/tokens).
 */

/**
 * A simple tokenizer: runs of letters or digits, split further every 8 characters (long identifiers
 * become several tokens, as with BPE), and every other non-space character on its own.
 */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const match of text.matchAll(/[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu)) {
    const token = match[0];
    for (let i = 0; i < token.length; i += 8) out.push(token.slice(i, i + 8));
  }
  return out;
}

export function countTokens(text: string): number {
  return tokenize(text).length;
}
