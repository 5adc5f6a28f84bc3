<?php
// Written by provision: how {{ site.domain }} reaches its database. Kept outside the document root.
return [
    'host' => {{ app.db_host | php_string }},
    'name' => {{ db.name | php_string }},
    'user' => {{ db.user | php_string }},
    'password' => {{ db.password | php_string }},
];
