//! Status columns as Rust enums. Each maps to its PostgreSQL enum type (the derives check the
//! type's name and labels when a statement is prepared), serialises as the same snake_case
//! label the API has always returned, and parses from it (query parameters).

use std::error::Error;
use std::fmt;

use postgres_types::{FromSql, IsNull, ToSql, Type};
use serde::{Deserialize, Serialize};

/// A label that names no status of the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown status {:?}", self.0)
    }
}

impl Error for UnknownStatus {}

/// `as_str`, `ALL`, `Display` and `FromStr` from the one list of labels (the serde and
/// postgres names are derived with `snake_case`; a test checks they agree).
macro_rules! labels {
    ($ty:ident { $($variant:ident = $label:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($ty::$variant => $label),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownStatus;

            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $($label => Ok($ty::$variant),)+
                    _ => Err(UnknownStatus(s.to_string())),
                }
            }
        }
    };
}

/// A company's status. The column is `varchar` with a CHECK constraint, not an enum type, so
/// it maps to and from text (below) rather than through the derives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompanyStatus {
    Active,
    Suspended,
    Pending,
    Deleted,
}

labels!(CompanyStatus { Active = "active", Suspended = "suspended", Pending = "pending", Deleted = "deleted" });

impl<'a> FromSql<'a> for CompanyStatus {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(<&str as FromSql>::from_sql(ty, raw)?.parse()?)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as FromSql>::accepts(ty)
    }
}

impl ToSql for CompanyStatus {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    postgres_types::to_sql_checked!();
}

/// A knowledge file's ingestion status (`file_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "file_status", rename_all = "snake_case")]
pub enum FileStatus {
    // Awaiting its upload.
    Pending,
    // Uploaded; its ingest job is on the queue.
    Queued,
    Processing,
    Indexed,
    Failed,
}

labels!(FileStatus {
    Pending = "pending",
    Queued = "queued",
    Processing = "processing",
    Indexed = "indexed",
    Failed = "failed",
});

/// A knowledge article's status (`article_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "article_status", rename_all = "snake_case")]
pub enum ArticleStatus {
    Draft,
    Published,
}

labels!(ArticleStatus { Draft = "draft", Published = "published" });

/// An invitation's status (`invitation_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "invitation_status", rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Expired,
    Revoked,
}

labels!(InvitationStatus { Pending = "pending", Accepted = "accepted", Expired = "expired", Revoked = "revoked" });

/// A conversation's status (`conversation_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "conversation_status", rename_all = "snake_case")]
pub enum ConversationStatus {
    Active,
    WaitingHuman,
    WithHuman,
    Resolved,
    Abandoned,
}

labels!(ConversationStatus {
    Active = "active",
    WaitingHuman = "waiting_human",
    WithHuman = "with_human",
    Resolved = "resolved",
    Abandoned = "abandoned",
});

impl ConversationStatus {
    /// A human owns the conversation (or is about to): the AI stays silent.
    pub fn is_human(&self) -> bool {
        matches!(self, Self::WaitingHuman | Self::WithHuman)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Resolved | Self::Abandoned)
    }
}

/// An AI agent's status (`agent_status`); only `active` agents take messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "agent_status", rename_all = "snake_case")]
pub enum AgentStatus {
    Draft,
    Active,
    Paused,
    Archived,
}

labels!(AgentStatus { Draft = "draft", Active = "active", Paused = "paused", Archived = "archived" });

/// A company subscription's status (`subscription_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "subscription_status", rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trial,
    Active,
    PastDue,
    GracePeriod,
    Expired,
    Cancelled,
}

labels!(SubscriptionStatus {
    Trial = "trial",
    Active = "active",
    PastDue = "past_due",
    GracePeriod = "grace_period",
    Expired = "expired",
    Cancelled = "cancelled",
});

impl SubscriptionStatus {
    /// The company's chat is served.
    pub fn is_usable(&self) -> bool {
        matches!(self, Self::Trial | Self::Active | Self::GracePeriod)
    }
}

/// A support agent's presence in the inbox (`support_agent_status`). The variants are in the
/// type's order, which is also the order the transfer picker lists people in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, ToSql, FromSql)]
#[serde(rename_all = "snake_case")]
#[postgres(name = "support_agent_status", rename_all = "snake_case")]
pub enum SupportAgentStatus {
    Online,
    Busy,
    Away,
    Offline,
}

labels!(SupportAgentStatus { Online = "online", Busy = "busy", Away = "away", Offline = "offline" });

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's snake_case names (which postgres-derive's `rename_all` computes the same way)
    /// are the labels `as_str` and `FromStr` use.
    fn agree<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + Serialize + std::str::FromStr + fmt::Display,
        <T as std::str::FromStr>::Err: fmt::Debug,
    {
        for v in all {
            let label = v.to_string();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(label.clone()));
            assert_eq!(label.parse::<T>().unwrap(), *v);
        }
    }

    #[test]
    fn labels_agree_with_serde() {
        agree(CompanyStatus::ALL);
        agree(FileStatus::ALL);
        agree(ArticleStatus::ALL);
        agree(InvitationStatus::ALL);
        agree(ConversationStatus::ALL);
        agree(AgentStatus::ALL);
        agree(SubscriptionStatus::ALL);
        agree(SupportAgentStatus::ALL);
        assert!("stale".parse::<FileStatus>().is_err());
        assert!("Active".parse::<CompanyStatus>().is_err());
    }

    /// The PostgreSQL enum type as the migrations define it.
    fn pg_enum(name: &str, labels: &[&str]) -> Type {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        Type::new(name.to_string(), 0, postgres_types::Kind::Enum(labels), "public".to_string())
    }

    /// The derives accept exactly the migrations' types (same name, same labels), and read and
    /// write the labels.
    #[test]
    fn postgres_types_match_the_migrations() {
        fn check<T: ToSql + for<'a> FromSql<'a> + fmt::Debug + PartialEq + Copy>(ty: &Type, all: &[T]) {
            assert!(<T as FromSql>::accepts(ty) && <T as ToSql>::accepts(ty), "{ty}");
            for v in all {
                let mut buf = bytes::BytesMut::new();
                v.to_sql(ty, &mut buf).unwrap();
                assert_eq!(T::from_sql(ty, &buf).unwrap(), *v);
            }
        }
        check(&pg_enum("file_status", &["pending", "queued", "processing", "indexed", "failed"]), FileStatus::ALL);
        check(&pg_enum("article_status", &["draft", "published"]), ArticleStatus::ALL);
        check(&pg_enum("invitation_status", &["pending", "accepted", "expired", "revoked"]), InvitationStatus::ALL);
        check(
            &pg_enum("conversation_status", &["active", "waiting_human", "with_human", "resolved", "abandoned"]),
            ConversationStatus::ALL,
        );
        check(&pg_enum("agent_status", &["draft", "active", "paused", "archived"]), AgentStatus::ALL);
        check(
            &pg_enum("subscription_status", &["trial", "active", "past_due", "grace_period", "expired", "cancelled"]),
            SubscriptionStatus::ALL,
        );
        check(&pg_enum("support_agent_status", &["online", "busy", "away", "offline"]), SupportAgentStatus::ALL);
        check(&Type::VARCHAR, CompanyStatus::ALL);
        check(&Type::TEXT, CompanyStatus::ALL);
        assert!(!<FileStatus as FromSql>::accepts(&Type::TEXT));
    }
}
