//! What the probe learned about the primary's database server, and why the bootstrap must run
//! again when its SQL is unchanged (an object it makes is missing, or an account is stale).

/// What the probe learned about the primary's database server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DbFacts {
    /// The server answered queries as root over its socket.
    pub reachable: bool,
    pub databases: Vec<String>,
    pub users: Vec<(String, String)>,
    /// The databases where the application's data is there (see `app::database_data`).
    pub data_rows: Vec<String>,
}

impl DbFacts {
    pub fn parse(lines: &[String]) -> DbFacts {
        let mut f = DbFacts::default();
        for line in lines {
            let cols: Vec<&str> = line.split('\t').collect();
            match cols.as_slice() {
                ["up"] => f.reachable = true,
                ["db", name] => f.databases.push(name.to_string()),
                ["user", user, host] => f.users.push((user.to_string(), host.to_string())),
                ["datarow", db, n] if n.trim() == "1" => f.data_rows.push(db.to_string()),
                _ => {}
            }
        }
        f
    }

    /// The accounts the server has that `accounts` does not name. The probe asks only about the
    /// users of `accounts`, so these are theirs for hosts the inventory no longer names (the
    /// bootstrap drops them).
    pub fn stale<'a>(
        &'a self,
        accounts: &'a [(String, String)],
    ) -> impl Iterator<Item = &'a (String, String)> + 'a {
        self.users.iter().filter(move |a| !accounts.contains(a))
    }

    /// Why the bootstrap must run although its SQL file is unchanged, if it must.
    pub fn reason(
        &self,
        databases: &[&str],
        accounts: &[(String, String)],
        data: &[(&str, &str)],
    ) -> Option<String> {
        if !self.reachable {
            return Some("the database server is not answering yet".into());
        }
        let one = databases.len() == 1;
        if let Some(db) = databases
            .iter()
            .find(|d| !self.databases.iter().any(|x| x == *d))
        {
            return Some(if one {
                "the database does not exist".into()
            } else {
                format!("the database {db} does not exist")
            });
        }
        if let Some((user, host)) = accounts.iter().find(|a| !self.users.contains(a)) {
            return Some(format!(
                "the database account '{user}'@'{host}' does not exist"
            ));
        }
        let stale: Vec<String> = self
            .stale(accounts)
            .map(|(user, host)| format!("'{user}'@'{host}'"))
            .collect();
        if !stale.is_empty() {
            return Some(format!(
                "for hosts the inventory no longer names, the database account(s) {} (dropped)",
                stale.join(", ")
            ));
        }
        if let Some((db, what)) = data
            .iter()
            .find(|(d, _)| !self.data_rows.iter().any(|x| x == d))
        {
            return Some(if one {
                format!("{what} has no row")
            } else {
                format!("{what} of {db} has no row")
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::lines;
    use super::*;

    /// The demo app's data in the database `foobar`.
    const DEMO: [(&str, &str); 1] = [("foobar", "the demo table")];

    #[test]
    fn a_converged_server_needs_nothing() {
        let f = DbFacts::parse(&lines(
            "up\ndb\tfoobar\nuser\tfoobar\tlocalhost\ndatarow\tfoobar\t1\n",
        ));
        let acc = vec![("foobar".to_string(), "localhost".to_string())];
        assert_eq!(f.reason(&["foobar"], &acc, &DEMO), None);
    }

    #[test]
    fn each_missing_object_is_a_reason_to_bootstrap() {
        let acc = vec![
            ("foobar".to_string(), "localhost".to_string()),
            ("foobar".to_string(), "10.0.0.5".to_string()),
        ];
        let down = DbFacts::parse(&lines(""));
        assert!(down
            .reason(&["foobar"], &acc, &DEMO)
            .unwrap()
            .contains("not answering"));
        let nodb = DbFacts::parse(&lines("up\n"));
        assert!(nodb
            .reason(&["foobar"], &acc, &DEMO)
            .unwrap()
            .contains("does not exist"));
        let one = DbFacts::parse(&lines(
            "up\ndb\tfoobar\nuser\tfoobar\tlocalhost\ndatarow\tfoobar\t1",
        ));
        assert_eq!(
            one.reason(&["foobar"], &acc, &DEMO).unwrap(),
            "the database account 'foobar'@'10.0.0.5' does not exist"
        );
        let norow = DbFacts::parse(&lines(
            "up\ndb\tfoobar\nuser\tfoobar\tlocalhost\nuser\tfoobar\t10.0.0.5\ndatarow\tfoobar\t0",
        ));
        assert!(norow
            .reason(&["foobar"], &acc, &DEMO)
            .unwrap()
            .contains("no row"));
        assert_eq!(norow.reason(&["foobar"], &acc, &[]), None);
        // An account of the same user for a host no longer named (a web host removed): dropped.
        let left = DbFacts::parse(&lines(
            "up\ndb\tfoobar\nuser\tfoobar\tlocalhost\nuser\tfoobar\t10.0.0.5\n\
             user\tfoobar\t10.0.0.9\nuser\tfoobar\t%\ndatarow\tfoobar\t1",
        ));
        assert_eq!(
            left.reason(&["foobar"], &acc, &DEMO).unwrap(),
            "for hosts the inventory no longer names, the database account(s) \
             'foobar'@'10.0.0.9', 'foobar'@'%' (dropped)"
        );
    }
}
