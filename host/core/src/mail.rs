//! Mail to data subjects, through the relay the integrator configures
//! (`[api.privacy.smtp]`), with `lettre`: STARTTLS or TLS (rustls, the
//! public roots), plain only to a relay on this machine. Sending blocks:
//! call it off the async runtime.

use crate::config::SmsSettings;
use crate::config::{SmtpSettings, SmtpTls};
use crate::rights::privacy::{Mail, Text};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};
use std::time::Duration;

/// Sends mails to data subjects.
pub trait Mailer: Send + Sync {
    /// Send `mail`; the error names no address and no content.
    fn send(&self, mail: &Mail) -> Result<(), String>;
}

/// The configured relay.
pub struct Smtp {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Smtp {
    /// A sender through `settings` (the password is read now).
    pub fn new(settings: &SmtpSettings) -> Result<Smtp, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| "api.privacy.smtp.from is not an address".to_string())?;
        let builder = match settings.tls {
            SmtpTls::StartTls => SmtpTransport::starttls_relay(&settings.host)
                .map_err(|e| format!("api.privacy.smtp: {e}"))?,
            SmtpTls::Tls => SmtpTransport::relay(&settings.host)
                .map_err(|e| format!("api.privacy.smtp: {e}"))?,
            SmtpTls::None => SmtpTransport::builder_dangerous(&settings.host),
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(Duration::from_secs(20)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            let secret = password
                .resolve()
                .map_err(|e| format!("api.privacy.smtp.password: {e}"))?;
            builder =
                builder.credentials(Credentials::new(user.clone(), secret.expose().to_string()));
        }
        Ok(Smtp {
            transport: builder.build(),
            from,
        })
    }
}

impl Mailer for Smtp {
    fn send(&self, mail: &Mail) -> Result<(), String> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|_| "the recipient is not an address".to_string())?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject);
        let message = match &mail.attachment {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone()),
            Some(a) => {
                use lettre::message::{Attachment, MultiPart, SinglePart};
                let kind = ContentType::parse(&a.media_type).unwrap_or(
                    ContentType::parse("application/octet-stream").expect("a media type"),
                );
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(mail.body.clone()))
                        .singlepart(Attachment::new(a.name.clone()).body(a.bytes.clone(), kind)),
                )
            }
        }
        .map_err(|_| "the mail could not be written".to_string())?;
        self.transport
            .send(&message)
            // lettre's errors can quote the server's reply, which may echo
            // the recipient: say only what kind of failure it was.
            .map(|_| ())
            .map_err(|e| {
                if e.is_transient() {
                    "the mail relay refused for now (transient)".to_string()
                } else if e.is_permanent() {
                    "the mail relay refused the message (permanent)".to_string()
                } else {
                    "the mail relay could not be reached".to_string()
                }
            })
    }
}

/// Sends text messages to data subjects' phones.
pub trait Texter: Send + Sync {
    /// Send `text`; the error names no number and no content.
    fn send(&self, text: &Text) -> Result<(), String>;
}

/// The configured gateway: a signed JSON POST.
pub struct SmsWebhook {
    url: String,
    secret: oubli_runtime::spec::Secret,
    agent: ureq::Agent,
}

impl SmsWebhook {
    /// A sender through `settings` (the secret is read now).
    pub fn new(settings: &SmsSettings) -> Result<SmsWebhook, String> {
        let secret = settings
            .secret
            .resolve()
            .map_err(|e| format!("api.privacy.sms.secret: {e}"))?;
        Ok(SmsWebhook {
            url: settings.url.to_string(),
            secret,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into(),
        })
    }
}

impl Texter for SmsWebhook {
    fn send(&self, text: &Text) -> Result<(), String> {
        let body = serde_json::to_vec(&serde_json::json!({"to": text.to, "text": text.body}))
            .map_err(|_| "the message could not be written".to_string())?;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signature = crate::rights::webhooks::sign(self.secret.expose().as_bytes(), t, &body);
        match self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .header(crate::rights::webhooks::SIGNATURE_HEADER, &signature)
            .send(&body[..])
        {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("the text gateway answered {}", r.status().as_u16())),
            Err(_) => Err("the text gateway could not be reached".to_string()),
        }
    }
}
