// Formatting of times for people.

// age is a duration in seconds, short: 42s, 5m, 3h, 2d.
export function age(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h';
  return Math.floor(s / 86400) + 'd';
}

// duration is a duration in seconds, precise: 42s, 5m 03s, 3h 02m.
export function duration(s) {
  s = Math.max(0, Math.floor(s));
  const two = (n) => String(n).padStart(2, '0');
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + two(s % 60) + 's';
  return Math.floor(s / 3600) + 'h ' + two(Math.floor(s / 60) % 60) + 'm';
}

// when is a Unix time in seconds as a local date and time.
export function when(unix) {
  if (!unix) return '';
  const d = new Date(unix * 1000);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
