//! What a site's application keeps in its database, beyond the database and the accounts the
//! database component makes: the demo page's table and the row it shows. The database component
//! runs `sql` in the site's bootstrap and asks for `data`'s count in its probe; what they hold is the
//! application's business alone.

use super::demo_message;
use crate::component::Cx;
use crate::render::RenderError;
use crate::spec::{App, Site};
use serde_json::json;

/// The application's data in its site's database, as the database component's probe asks for it.
pub struct AppData {
    /// What it is, in the reason the bootstrap runs again: `the demo table` (has no row).
    pub what: &'static str,
    /// What counts it (`COUNT(*) FROM … WHERE …`): 1 when it is there. On a missing table only
    /// this count fails.
    pub count: String,
}

/// What the site's application keeps in its database, if anything.
pub fn data(site: &Site) -> Option<AppData> {
    match site.app {
        App::Demo => Some(AppData {
            what: "the demo table",
            count: format!(
                "COUNT(*) FROM `{}`.provision_demo WHERE id = 1",
                site.database.name
            ),
        }),
        App::Files(_) => None,
    }
}

/// The idempotent SQL that makes the data (empty when the application keeps none).
pub fn sql(cx: &Cx, site: &Site) -> Result<String, RenderError> {
    match site.app {
        App::Demo => cx.render_for(
            site,
            "app/data.sql",
            &[(
                "demo",
                json!({ "database": site.database.name, "message": demo_message(site) }),
            )],
        ),
        App::Files(_) => Ok(String::new()),
    }
}
