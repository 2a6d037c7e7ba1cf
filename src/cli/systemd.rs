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
    /// Read the settings (data_dir, listen, …) from this config file instead of
    /// passing them as flags (the .deb's unit uses /etc/tokentally/config.toml)
    #[arg(long = "unit-config", value_name = "FILE")]
    pub unit_config: Option<PathBuf>,
}

pub fn unit(args: &SystemdArgs) -> String {
    let exec_start = match &args.unit_config {
        Some(config) => format!(
            "{} --config {} serve",
            args.binary.display(),
            config.display()
        ),
        None => format!(
            "{} serve --data-dir /var/lib/tokentally --listen {} --log-format json",
            args.binary.display(),
            args.listen
        ),
    };
    let header = match &args.unit_config {
        Some(config) => format!(
            "# tokentally: its settings are in {}; after changing them:\n\
             #   systemctl restart tokentally\n",
            config.display()
        ),
        None => "# tokentally: install as /etc/systemd/system/tokentally.service, then\n\
                 #   systemctl daemon-reload && systemctl enable --now tokentally\n"
            .to_owned(),
    };
    let mut out = header;
    let _ = write!(
        out,
        "\
[Unit]
Description=tokentally, a dashboard of LLM token usage
After=network-online.target
Wants=network-online.target

[Service]
Type=exec
ExecStart={exec_start}
Restart=on-failure
RestartSec=2s
# SIGTERM: finish requests, drain writes, checkpoint the database.
KillSignal=SIGTERM
TimeoutStopSec=30s
",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The .deb ships this unit (packaging/deb/tokentally.service): it is
    /// what `systemd-unit` prints for the package's paths.
    #[test]
    fn the_package_unit_is_the_generated_one() {
        let args = SystemdArgs {
            binary: PathBuf::from("/usr/bin/tokentally"),
            listen: "127.0.0.1:8080".to_owned(),
            user: "tokentally".to_owned(),
            dynamic_user: false,
            unit_config: Some(PathBuf::from("/etc/tokentally/config.toml")),
        };
        assert_eq!(
            include_str!("../../packaging/deb/tokentally.service"),
            unit(&args),
            "regenerate it: tokentally systemd-unit --binary /usr/bin/tokentally \
             --unit-config /etc/tokentally/config.toml > packaging/deb/tokentally.service"
        );
    }
}
