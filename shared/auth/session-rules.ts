/** Why a session no longer authenticates anyone, or null while it does. Pure: shared by every door in. */
export function sessionEndReason(
  session: { revoked: boolean; expires_at: number; created_at: string } | undefined,
  user: { is_active: boolean; sessions_valid_after?: string } | undefined,
  nowEpochSeconds: number,
): string | null {
  if (!session || session.revoked || session.expires_at <= nowEpochSeconds) return 'Session has ended';
  if (!user || !user.is_active) return 'User is not active';
  // A password change ends every session that began before it (a stolen refresh token dies with it).
  if (user.sessions_valid_after && session.created_at < user.sessions_valid_after) return 'Session has ended';
  return null;
}
