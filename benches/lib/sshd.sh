# Sourced by the ssh benches: an sshd of their own on a free loopback port
# with throwaway keys, whose remote PATH finds $H (this build's hammer)
# first. After `start_sshd <dir>`, "$T/rsh" is a HAMMER_RSH that reaches
# it; `link_rsh <name> <ProxyCommand>` makes "$T/rsh.<name>" reaching it
# through that proxy. Needs sshd, ssh, ssh-keygen, python3. Also brings
# the timing helpers (benches/lib/timing.sh).

. benches/lib/timing.sh

start_sshd() {
    T=$1
    mkdir -p "$T/bin" /run/sshd
    ln -sf "$H" "$T/bin/hammer"
    ssh-keygen -q -t ed25519 -N '' -f "$T/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$T/id"
    echo "environment=\"PATH=$T/bin:/usr/bin:/bin\" $(cat "$T/id.pub")" >"$T/authorized_keys"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$T/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $T/host_key
AuthorizedKeysFile $T/authorized_keys
PidFile $T/sshd.pid
StrictModes no
UsePAM no
PermitRootLogin yes
PermitUserEnvironment yes
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel ERROR
MaxStartups 30
EOF
    link_rsh plain ""
    cp "$T/rsh.plain" "$T/rsh"
    /usr/sbin/sshd -f "$T/sshd_config" -E "$T/sshd.log"
}

stop_sshd() {
    [ -f "$T/sshd.pid" ] && kill "$(cat "$T/sshd.pid")" 2>/dev/null
    true
}

link_rsh() {
    {
        echo "Host *"
        echo "  HostName 127.0.0.1"
        echo "  Port $PORT"
        echo "  IdentityFile $T/id"
        echo "  IdentitiesOnly yes"
        echo "  StrictHostKeyChecking no"
        echo "  UserKnownHostsFile /dev/null"
        echo "  BatchMode yes"
        echo "  LogLevel ERROR"
        [ -n "$2" ] && echo "  ProxyCommand $2"
    } >"$T/ssh_config.$1"
    printf '#!/bin/sh\nexec ssh -F %s "$@"\n' "$T/ssh_config.$1" >"$T/rsh.$1"
    chmod +x "$T/rsh.$1"
}
