//! `tokentally systemd-unit`: a hardened unit file for this binary.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct SystemdArgs {
    /// Path of the installed binary
    #[arg(long, default_value = "/usr/local/bin/tokentally")]
    pub binary: PathBuf,
    /// Address the service listens on
    #[arg(
        long = "unit-listen",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// System user the service runs as (create it with `useradd --system`)
    #[arg(long = "unit-user", default_value = "tokentally", value_name = "NAME")]
    pub user: String,
    /// Run as a transient DynamicUser instead of a dedicated system user
    #[arg(long)]
    pub dynamic_user: bool,
}

pub fn unit(args: &SystemdArgs) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\
# tokentally: install as /etc/systemd/system/tokentally.service, then
#   systemctl daemon-reload && systemctl enable --now tokentally
[Unit]
Description=tokentally, a dashboard of LLM token usage
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart={binary} serve --data-dir /var/lib/tokentally --listen {listen} --log-format json
Restart=on-failure
RestartSec=2s
# SIGTERM: finish requests, drain writes, checkpoint the database.
KillSignal=SIGTERM
TimeoutStopSec=30s
",
        binary = args.binary.display(),
        listen = args.listen,
    );
    if args.dynamic_user {
        out.push_str("DynamicUser=yes\n");
    } else {
        let _ = writeln!(out, "User={0}\nGroup={0}", args.user);
    }
    out.push_str(
        "\
StateDirectory=tokentally
StateDirectoryMode=0700
UMask=0077

# Hardening: the service reads its binary and writes only its state directory.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
",
    );
    out
}
