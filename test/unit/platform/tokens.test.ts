import { describe, expect, it } from 'vitest';
import { CHARS_PER_TOKEN, estimateTokens, tokensForChars } from '../../../shared/platform/tokens.js';

describe('token estimate', () => {
  it('counts about four characters per token, rounding up', () => {
    expect(CHARS_PER_TOKEN).toBe(4);
    expect(tokensForChars(0)).toBe(0);
    expect(tokensForChars(1)).toBe(1);
    expect(tokensForChars(8)).toBe(2);
    expect(tokensForChars(9)).toBe(3);
  });

  it('estimates a text by its length', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(estimateTokens('abcdefghi')).toBe(tokensForChars(9));
  });
});
