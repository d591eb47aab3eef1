"""The first-boot script each instance's init runs, cloud-init style.

It generates fresh SSH host keys, prints them to the console in cloud-init's
BEGIN/END blocks (so clients verify keys out of band), sets up the default user,
starts user_data once (a shell script; output to the console) and execs sshd.
"""

from __future__ import annotations

import shlex

BOOT_PATH = "/run/rackpool/boot.sh"
INIT_PATH = "/run/rackpool/init"
USER_DATA_PATH = "/var/lib/cloud/instance/user-data.txt"
USER_DATA_DONE = "/var/lib/cloud/instance/sem/user-data.done"
READY_LINE = "Server listening on 0.0.0.0 port 22."

_SCRIPT = """\
#!/bin/sh
# rackpool instance boot (PID 1 is a static init that reaps orphans)
exec </dev/null 2>&1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
echo "rackpool: booting $(hostname)"
mkdir -p /run/sshd /var/lib/cloud/instance/sem
chmod 0755 /run/sshd
keygens=""
if [ ! -e /var/lib/cloud/instance/sem/host-keys.done ]; then
  rm -f /etc/ssh/ssh_host_*
  # one ssh-keygen per type, side by side with each other and the user's set-up
  for t in {key_types}; do
    ssh-keygen -q -t "$t" -N '' -C "root@$(hostname)" -f "/etc/ssh/ssh_host_${{t}}_key" &
    keygens="$keygens $!"
  done
fi
user={user}
if [ -n "$user" ] && ! id "$user" >/dev/null 2>&1; then
  # password "*": no password login, but not locked ("!"), which sshd refuses without PAM
  useradd -m -p '*' -s /bin/sh -c "cloud default user" "$user" >/dev/null 2>&1 \
    || echo "rackpool: could not create user $user"
  home=$(getent passwd "$user" | cut -d: -f6)
  mkdir -p "$home/.ssh" /etc/sudoers.d
  cp /root/.ssh/authorized_keys "$home/.ssh/authorized_keys" 2>/dev/null
  chown -R "$user:" "$home/.ssh"; chmod 700 "$home/.ssh"
  echo "$user ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/90-rackpool-$user"
  chmod 0440 "/etc/sudoers.d/90-rackpool-$user"
fi
for p in $keygens; do wait "$p" || exit 1; done
touch /var/lib/cloud/instance/sem/host-keys.done
echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f "$f"; done
echo "-----END SSH HOST KEY FINGERPRINTS-----"
echo "-----BEGIN SSH HOST KEY KEYS-----"
cat /etc/ssh/ssh_host_*_key.pub
echo "-----END SSH HOST KEY KEYS-----"
if [ -f {user_data} ] && [ ! -e {user_data_done} ]; then
  touch {user_data_done}
  # double fork: the init (PID 1) adopts and reaps it, sshd never sees it
  ( ( echo "rackpool: running user_data"; {user_data}; echo "rackpool: user_data exited $?" ) & )
fi
exec /usr/sbin/sshd -D -e {host_key_opts} -o PidFile=/run/sshd.pid \\
  -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no
"""


def boot_script(default_user: str | None, key_types: list[str]) -> str:
    types = [t for t in key_types if t.isalnum()]
    return _SCRIPT.format(
        key_types=" ".join(types),
        user=shlex.quote(default_user or ""),
        user_data=USER_DATA_PATH,
        user_data_done=USER_DATA_DONE,
        host_key_opts=" ".join(f"-h /etc/ssh/ssh_host_{t}_key" for t in types),
    )


def parse_host_keys(console: str) -> tuple[str, ...]:
    """Public host keys (``type base64``) from the last KEYS block of a console log."""
    begin = console.rfind("-----BEGIN SSH HOST KEY KEYS-----")
    if begin < 0:
        return ()
    end = console.find("-----END SSH HOST KEY KEYS-----", begin)
    if end < 0:
        return ()
    keys = []
    for line in console[begin:end].splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and (parts[0].startswith(("ssh-", "ecdsa-", "sk-"))):
            keys.append(f"{parts[0]} {parts[1]}")
    return tuple(keys)
