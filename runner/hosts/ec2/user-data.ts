// The `max_hours` cost guard. The instance is launched with InstanceInitiatedShutdownBehavior
// "terminate" and this cloud-init user data, which schedules `shutdown -h +<minutes>`: a host
// forgotten by everyone (laptop closed, connection dropped, pipe killed) is gone after that many
// hours. User data runs once per instance, so the script also installs itself as a per-boot
// script: an instance stopped by `pipe down` and started again by the next run gets the same
// guard, counted from that boot.

/** Minutes of the guard (at least 1), or undefined when `max_hours` is 0 (no guard). */
export function guardMinutes(maxHours: number): number | undefined {
  if (!(maxHours > 0)) return undefined;
  return Math.max(1, Math.round(maxHours * 60));
}

/** The cloud-init user-data script (plain text; the EC2 API takes it base64-encoded). */
export function maxHoursUserData(maxHours: number): string | undefined {
  const minutes = guardMinutes(maxHours);
  if (minutes === undefined) return undefined;
  const message = `pipe max_hours guard: shutting down ${maxHours}h after boot`;
  return [
    '#!/bin/bash',
    '# pipe: max_hours cost guard. Launched with InstanceInitiatedShutdownBehavior=terminate,',
    `# so this shutdown terminates the instance ${maxHours}h (${minutes} min) after boot.`,
    `mkdir -p /var/lib/cloud/scripts/per-boot`,
    `cat > /var/lib/cloud/scripts/per-boot/pipe-max-hours.sh <<'PIPE_GUARD'`,
    '#!/bin/sh',
    `shutdown -h +${minutes} "${message}"`,
    'PIPE_GUARD',
    'chmod 755 /var/lib/cloud/scripts/per-boot/pipe-max-hours.sh',
    `shutdown -h +${minutes} "${message}"`,
    '',
  ].join('\n');
}

/** Base64, as RunInstances' UserData wants it. */
export function encodeUserData(script: string): string {
  return Buffer.from(script, 'utf8').toString('base64');
}
