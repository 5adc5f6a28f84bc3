<?php
$bad = 0;
$oc = function_exists("opcache_compile_file") && ini_get("opcache.enable_cli");
while (($f = fgets(STDIN)) !== false) {
    $f = rtrim($f, "\n");
    if ($f === "") continue;
    try {
        if ($oc && @opcache_compile_file($f)) continue;
        if (!$oc) { token_get_all(file_get_contents($f), TOKEN_PARSE); continue; }
        $out = [];
        exec(escapeshellarg(PHP_BINARY) . " -l " . escapeshellarg($f) . " 2>&1", $out, $rc);
        if ($rc !== 0) {
            echo implode("\n", array_filter($out, fn($l) => $l !== "" && !str_starts_with($l, "Errors parsing"))), "\n";
            $bad = 1;
        }
    } catch (\Throwable $e) {
        echo "$f:{$e->getLine()}: {$e->getMessage()}\n";
        $bad = 1;
    }
}
exit($bad);
