"""Configuration: environment variables (`CAIRN_*`) and an optional dotenv-style file.

One settings class per concern; the environment is read here and nowhere else. Each adapter
is chosen on its own: a Kafka bootstrap selects the Kafka log, a database URL selects
PostgreSQL, an OpenSearch URL selects OpenSearch; otherwise the embedded SQLite ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _config() -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix="CAIRN_", extra="ignore")


class AdapterSettings(BaseSettings):
    model_config = _config()

    data_dir: Path = Path(".cairn")
    kafka_bootstrap: str | None = None
    database_url: SecretStr | None = None
    # PostgreSQL connections per process: at most pool size + overflow, so the sum over
    # every Cairn process must stay under the server's max_connections.
    database_pool_size: int = Field(default=5, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    database_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    opensearch_url: str | None = None
    # The OpenSearch alias searched (physical indexes are `<alias>-v<N>-<stamp>`), and how
    # often it refreshes: a change is searchable within about this long.
    opensearch_index: str = Field(
        default="cairn-entities", pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100
    )
    opensearch_refresh_interval: str = Field(default="500ms", pattern=r"^[0-9]+(ms|s)$")
    topic_partitions: int = Field(default=12, ge=1)
    topic_replication: int = Field(default=1, ge=1)


class KafkaSettings(BaseSettings):
    """The Kafka log and the faust processors (used when CAIRN_KAFKA_BOOTSTRAP is set)."""

    model_config = _config()

    # Prefix of every topic and consumer group, so installations can share a cluster.
    kafka_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    # A receiver waits this long for the broker's acknowledgement before answering 503.
    kafka_publish_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # A worker that stops heartbeating loses its partitions after this (broker minimum 6 s).
    kafka_session_timeout_seconds: float = Field(default=10.0, ge=1, le=300)
    # The faust app's id, which is the processors' consumer group.
    kafka_processors_group: str = Field(default="cairn-processors", min_length=1)
    # Projection batches: at most this many records, gathered for at most this long.
    kafka_batch_size: int = Field(default=500, ge=1, le=10_000)
    kafka_batch_seconds: float = Field(default=0.05, gt=0, le=10)


class WebhookSettings(BaseSettings):
    model_config = _config()

    github_webhook_secret: SecretStr | None = None
    insecure_webhooks: bool = False
    max_payload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)

    def github_secrets(self) -> list[bytes]:
        """Every configured secret: comma-separated so a secret can be rotated."""
        if self.github_webhook_secret is None:
            return []
        raw = self.github_webhook_secret.get_secret_value()
        return [part.strip().encode() for part in raw.split(",") if part.strip()]

    # Other Git hosts: each value is comma-separated so a secret or token can be rotated.
    gitlab_webhook_token: SecretStr | None = None
    gitea_webhook_secret: SecretStr | None = None
    bitbucket_webhook_secret: SecretStr | None = None

    def gitlab_tokens(self) -> list[bytes]:
        """Every configured GitLab secret token (compared with `X-Gitlab-Token`)."""
        return _split_secrets(self.gitlab_webhook_token)

    def gitea_secrets(self) -> list[bytes]:
        """Every configured Gitea/Forgejo webhook secret (HMAC key of the signature)."""
        return _split_secrets(self.gitea_webhook_secret)

    def bitbucket_secrets(self) -> list[bytes]:
        """Every configured Bitbucket Cloud webhook secret (HMAC key of `X-Hub-Signature`)."""
        return _split_secrets(self.bitbucket_webhook_secret)

    # CI/CD receivers: bearer tokens, comma-separated so a token can be rotated.
    deployments_token: SecretStr | None = None
    cdevents_token: SecretStr | None = None

    def deployments_tokens(self) -> list[bytes]:
        """Tokens of `POST /api/deployments` (`Authorization: Bearer <token>`)."""
        return _split_secrets(self.deployments_token)

    def cdevents_tokens(self) -> list[bytes]:
        """Tokens of `POST /events/cdevents` (`Authorization: Bearer <token>`)."""
        return _split_secrets(self.cdevents_token)


def _split_secrets(value: SecretStr | None) -> list[bytes]:
    if value is None:
        return []
    return [part.strip().encode() for part in value.get_secret_value().split(",") if part.strip()]


class GitSettings(BaseSettings):
    model_config = _config()

    catalog_files: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["catalog-info.yaml", "catalog-info.yml"]
    )
    git_timeout_seconds: float = Field(default=120.0, gt=0)
    # Every repository is re-read this often, healing whatever a lost webhook missed; 0 = off.
    resync_interval_seconds: float = Field(default=3600.0, ge=0)
    # Repositories read at once by the embedded descriptor processor.
    descriptor_workers: int = Field(default=4, ge=1, le=64)
    max_descriptor_bytes: int = Field(default=1_000_000, ge=1)

    @field_validator("catalog_files", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


class ServerSettings(BaseSettings):
    model_config = _config()

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


API_SCOPES = ("read", "admin")


class ApiSettings(BaseSettings):
    """Who may use the catalog API: `CAIRN_API_TOKENS=token:read,other:admin`.

    With no tokens the catalog API answers loopback clients only.
    """

    model_config = _config()

    api_tokens: SecretStr | None = None

    def tokens(self) -> dict[str, str]:
        """Token -> scope (`read` or `admin`); empty when none are configured.

        Raises ValueError naming the malformed entry by position (never its text: a secret).
        """
        if self.api_tokens is None:
            return {}
        return _parse_tokens(self.api_tokens.get_secret_value())


def _parse_tokens(raw: str) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for number, part in enumerate((p.strip() for p in raw.split(",")), start=1):
        if not part:
            continue
        token, _, scope = part.rpartition(":")
        if not token or scope not in API_SCOPES:
            raise ValueError(
                f"CAIRN_API_TOKENS entry {number} is not <token>:<scope> with scope "
                f"{' or '.join(API_SCOPES)}; write e.g. CAIRN_API_TOKENS=s3cret:read."
            )
        tokens[token] = scope
    return tokens


@dataclass(frozen=True)
class Settings:
    adapters: AdapterSettings
    webhooks: WebhookSettings
    git: GitSettings
    server: ServerSettings
    kafka: KafkaSettings
    api: ApiSettings

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: object) -> Settings:
        """Read every concern from the environment (and `config_file`), then apply overrides.

        Overrides are keyword arguments named like the fields (`data_dir=...`, `port=...`).
        """
        parts: dict[str, BaseSettings] = {}
        for name, settings_class in (
            ("adapters", AdapterSettings),
            ("webhooks", WebhookSettings),
            ("git", GitSettings),
            ("server", ServerSettings),
            ("kafka", KafkaSettings),
            ("api", ApiSettings),
        ):
            fields: dict[str, Any] = {
                k: v for k, v in overrides.items() if k in settings_class.model_fields
            }
            parts[name] = settings_class(_env_file=config_file, **fields)  # type: ignore[call-arg]
        unknown = set(overrides) - {f for p in parts.values() for f in type(p).model_fields}
        if unknown:
            raise ValueError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")
        return cls(**parts)  # type: ignore[arg-type]
