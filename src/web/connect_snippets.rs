//! The text of the Connect page's blocks: each producer's configuration
//! with this instance's URL and a token filled in. Values are quoted for
//! the language of their block (JSON, TOML, YAML, POSIX shell), so a
//! configured URL with a quote in it still makes a valid file.

/// What the blocks say where the token goes, before one is created.
pub const PLACEHOLDER_TOKEN: &str = "YOUR_TOKEN";
/// LiteLLM's endpoint (`ingest::litellm`).
pub const LITELLM_PATH: &str = "/api/v1/ingest/litellm";

/// What every block is made from.
pub struct Snippets<'a> {
    /// The instance's URL, without a trailing `/`.
    pub url: &'a str,
    pub token: &'a str,
    /// The viewer, for `import --user`.
    pub username: &'a str,
    /// The server counts Claude Code's log events, not its metrics.
    pub claude_code_logs: bool,
}

/// `value` as a JSON string; also a valid TOML basic string and YAML
/// double-quoted scalar (the same escapes).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// `value` in single quotes for a POSIX shell.
fn sh(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

impl Snippets<'_> {
    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The `env` block of Claude Code's settings: the signal this server
    /// counts, OTLP/HTTP, the address and the token.
    pub fn claude_code_settings(&self) -> String {
        let exporter = if self.claude_code_logs {
            "OTEL_LOGS_EXPORTER"
        } else {
            "OTEL_METRICS_EXPORTER"
        };
        format!(
            r#"{{
  "env": {{
    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
    "{exporter}": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_EXPORTER_OTLP_ENDPOINT": {url},
    "OTEL_EXPORTER_OTLP_HEADERS": {header}
  }}
}}"#,
            url = quoted(self.url),
            header = quoted(&format!("Authorization={}", self.bearer())),
        )
    }

    /// Gemini CLI's `telemetry` settings: OTLP over HTTP (protobuf) to
    /// the address, which it completes with `/v1/metrics` and the rest;
    /// prompts are not sent (tokentally does not keep them).
    pub fn gemini_settings(&self) -> String {
        format!(
            r#"{{
  "telemetry": {{
    "enabled": true,
    "target": "local",
    "otlpEndpoint": {url},
    "otlpProtocol": "http",
    "logPrompts": false
  }}
}}"#,
            url = quoted(self.url),
        )
    }

    /// The header Gemini CLI's exporters take from the environment.
    pub fn gemini_env(&self, admin: bool) -> String {
        let mut text = format!(
            "export OTEL_EXPORTER_OTLP_HEADERS={}",
            sh(&format!("Authorization={}", self.bearer()))
        );
        if admin {
            text.push_str(
                "\n# per person, where Gemini CLI has no Google-account login:\
                 \nexport OTEL_RESOURCE_ATTRIBUTES='enduser.id=jdoe@example.com'",
            );
        }
        text
    }

    /// Codex's metrics exporter (its log exporter carries nothing
    /// tokentally counts).
    pub fn codex_config(&self) -> String {
        format!(
            "[otel]\nlog_user_prompt = false\nmetrics_exporter = {{ otlp-http = {{ endpoint = {endpoint}, \
             protocol = \"binary\", headers = {{ \"Authorization\" = {header} }} }} }}",
            endpoint = quoted(&format!("{}/v1/metrics", self.url)),
            header = quoted(&self.bearer()),
        )
    }

    /// The standard OTLP variables of any SDK. The header's space is
    /// percent-encoded, as the specification of the variable asks.
    pub fn otel_sdk_env(&self, admin: bool) -> String {
        let resource = if admin {
            "service.name=my-app,project.name=my-app,enduser.id=jdoe@example.com"
        } else {
            "service.name=my-app,project.name=my-app"
        };
        format!(
            "export OTEL_EXPORTER_OTLP_ENDPOINT={url}\n\
             export OTEL_EXPORTER_OTLP_PROTOCOL='http/protobuf'   # or http/json\n\
             export OTEL_EXPORTER_OTLP_HEADERS={header}\n\
             export OTEL_TRACES_EXPORTER='otlp'    # GenAI spans…\n\
             export OTEL_METRICS_EXPORTER='none'   # …or 'otlp' for gen_ai.client.token.usage, not both\n\
             export OTEL_LOGS_EXPORTER='none'\n\
             export OTEL_RESOURCE_ATTRIBUTES={resource}",
            url = sh(self.url),
            header = sh(&format!("Authorization=Bearer%20{}", self.token)),
            resource = sh(resource),
        )
    }

    /// LiteLLM's `generic_api` callback, as the README documents it.
    pub fn litellm_config(&self) -> String {
        format!(
            "litellm_settings:\n  callbacks: [\"tokentally\"]\ncallback_settings:\n  tokentally:\n    \
             callback_type: generic_api\n    endpoint: {endpoint}\n    headers:\n      \
             Authorization: {header}\n    log_format: json_array        # or ndjson, single",
            endpoint = quoted(&format!("{}{LITELLM_PATH}", self.url)),
            header = quoted(&self.bearer()),
        )
    }

    /// `tokentally import --server`, the token in the environment.
    pub fn import_remote(&self) -> String {
        format!(
            "export TOKENTALLY_TOKEN={token}\ntokentally import --server {url}\n\
             # or files of events: tokentally import --server {url} ~/exports/usage.csv",
            token = sh(self.token),
            url = sh(self.url),
        )
    }

    /// `tokentally import` into the server's own database.
    pub fn import_local(&self) -> String {
        format!(
            "sudo -u tokentally tokentally --data-dir /var/lib/tokentally import --user {user} PATH",
            user = sh(self.username),
        )
    }
}

/// Claude Code's per-person attributes under a collector token.
pub fn claude_code_person() -> String {
    r#"{
  "env": {
    "OTEL_RESOURCE_ATTRIBUTES": "enduser.id=jdoe@example.com,host.name=jdoe-laptop"
  }
}"#
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile() -> Snippets<'static> {
        Snippets {
            url: "https://x.example/a\"b'c",
            token: "tt_0123",
            username: "o'brien",
            claude_code_logs: false,
        }
    }

    #[test]
    fn json_blocks_stay_json() {
        let s = hostile();
        for text in [s.claude_code_settings(), s.gemini_settings()] {
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert!(parsed.to_string().contains("x.example"));
        }
        let env: serde_json::Value =
            serde_json::from_str(&s.claude_code_settings()).expect("valid JSON");
        assert_eq!(env["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"], s.url);
        assert_eq!(
            env["env"]["OTEL_EXPORTER_OTLP_HEADERS"],
            "Authorization=Bearer tt_0123"
        );
        assert_eq!(env["env"]["OTEL_METRICS_EXPORTER"], "otlp");
        assert!(env["env"].get("OTEL_LOGS_EXPORTER").is_none());
    }

    #[test]
    fn claude_code_exports_the_signal_the_server_counts() {
        let s = Snippets {
            claude_code_logs: true,
            ..hostile()
        };
        let env: serde_json::Value =
            serde_json::from_str(&s.claude_code_settings()).expect("valid JSON");
        assert_eq!(env["env"]["OTEL_LOGS_EXPORTER"], "otlp");
        assert!(env["env"].get("OTEL_METRICS_EXPORTER").is_none());
    }

    #[test]
    fn the_codex_block_is_toml_with_the_metrics_endpoint() {
        let s = hostile();
        let parsed: toml::Table = s.codex_config().parse().expect("valid TOML");
        let http = &parsed["otel"]["metrics_exporter"]["otlp-http"];
        assert_eq!(
            http["endpoint"].as_str(),
            Some("https://x.example/a\"b'c/v1/metrics")
        );
        assert_eq!(http["protocol"].as_str(), Some("binary"));
        assert_eq!(
            http["headers"]["Authorization"].as_str(),
            Some("Bearer tt_0123")
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh("a'b"), r"'a'\''b'");
        assert!(hostile().import_local().contains(r"'o'\''brien'"));
    }
}
