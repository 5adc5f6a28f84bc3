<?php
// The demo application of provision: one request proves web server → PHP → MariaDB.
$config = require {{ app.config_path | php_string }};
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
header('Content-Type: text/html; charset=utf-8');
try {
    $db = new mysqli($config['host'], $config['user'], $config['password'], $config['name']);
    $row = $db->query('SELECT message FROM provision_demo WHERE id = 1')->fetch_row();
    $message = $row ? $row[0] : 'no row';
} catch (mysqli_sql_exception $e) {
    // The reason goes to the server's error log; a visitor learns only that it failed.
    error_log({{ site.domain | php_string }} . ' demo page: database error: ' . $e->getMessage());
    http_response_code(500);
    $message = 'the database is not available';
}
$host = gethostname();
?>
<!doctype html>
<title>{{ site.fqdns[0] }}</title>
<h1>{{ site.fqdns[0] }}</h1>
<p>Served by <b id="host"><?= htmlspecialchars($host) ?></b></p>
<p>Database says: <b id="row"><?= htmlspecialchars($message) ?></b></p>
