//! `GET /events` and `GET /system/df`.

use hyper::Method;
use serde_json::Value;

use crate::body::{self, BodyReader};
use crate::push_filters;
use crate::{Client, Filters, Query, Result};

impl Client {
    /// `GET /events`: the stream, one JSON object a line. `since`/`until` are sent as given (Unix
    /// seconds with an optional fraction, or RFC 3339).
    pub async fn events(&self, since: Option<&str>, until: Option<&str>, filters: &Filters) -> Result<BodyReader> {
        let mut q = Query::new();
        if let Some(s) = since {
            q.push(("since", s.to_string()));
        }
        if let Some(u) = until {
            q.push(("until", u.to_string()));
        }
        push_filters(&mut q, filters);
        let resp = self.request(Method::GET, "/events", &q, body::empty(), None).await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `GET /system/df`.
    pub async fn system_df(&self) -> Result<Value> {
        self.json(Method::GET, "/system/df", &Query::new(), None).await
    }
}
