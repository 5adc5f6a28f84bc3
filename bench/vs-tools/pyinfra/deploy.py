# The site of inventories/lab-lemp.toml (LEMP + BIND, on a "plain" lab host: no init system, so
# services are driven through their init scripts), the pyinfra 3.x way.
# Host data (from the inventory bench/vs-tools/run writes): render_dir (what `provision render`
# wrote for this host), apt_packages, php_ver. The config files are provision's rendered ones,
# uploaded as they are, so only the tools' own execution differs.
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, sysvinit

r = host.data.render_dir
php_ver = host.data.php_ver
php_svc = f"php{php_ver}-fpm"
rid = host.data.release_id

apt.packages(
    name="Packages",
    packages=host.data.apt_packages,
    update=True,
    cache_time=86400,  # provision updates the lists when they are older than 24 h, too
)

for path, mode, group in [
    ("/var/lib/provision", "700", "root"),
    ("/var/lib/provision/sql", "700", "root"),
    ("/var/www/foobar.com", "755", "root"),
    ("/var/www/foobar.com/releases", "755", "root"),
    (f"/var/www/foobar.com/releases/{rid}", "755", "root"),
    ("/etc/provision", "755", "root"),
    ("/etc/provision/sites", "755", "root"),
    ("/etc/provision/sites/foobar.com", "750", "www-data"),
]:
    files.directory(name=f"Directory {path}", path=path, user="root", group=group, mode=mode)


def put(path, mode="644", group="root"):
    return files.put(
        name=f"File {path}", src=r + path, dest=path, user="root", group=group, mode=mode
    )


mariadb_cnf = put("/etc/mysql/mariadb.conf.d/60-provision.cnf")
role_cnf = put("/etc/mysql/mariadb.conf.d/61-provision-role.cnf")
sql = put("/var/lib/provision/sql/foobar.sql", mode="600")
php_ops = [
    put(f"/etc/php/{php_ver}/fpm/pool.d/foobar.com.conf"),
    put(f"/etc/php/{php_ver}/fpm/conf.d/90-provision-opcache.ini"),
    put(f"/var/www/foobar.com/releases/{rid}/index.php"),
    files.link(name="Release live", path="/var/www/foobar.com/current", target=f"releases/{rid}"),
    put("/etc/provision/sites/foobar.com/config.php", mode="640", group="www-data"),
]
nginx_ops = [
    put("/etc/nginx/nginx.conf"),
    put("/etc/nginx/sites-available/foobar.com.conf"),
    files.link(
        name="Nginx site enabled",
        path="/etc/nginx/sites-enabled/foobar.com.conf",
        target="../sites-available/foobar.com.conf",
    ),
    files.link(name="Nginx default site disabled", path="/etc/nginx/sites-enabled/default", present=False),
]
bind_ops = [
    put("/etc/bind/db.foobar.com", group="bind"),
    put("/etc/bind/named.conf.local", group="bind"),
]


def any_changed(ops):
    return lambda: any(op.did_change() for op in ops)


# sysvinit.service: starts a service that is down; restarts/reloads only one that was already
# running (one this run started already reads its new config).
sysvinit.service(name="mariadb", service="mariadb", running=True, restarted=True,
                 _if=any_changed([mariadb_cnf]))
sysvinit.service(name="mariadb running", service="mariadb", running=True)
server.shell(
    name="Database bootstrap",
    commands=["mariadb < /var/lib/provision/sql/foobar.sql"],
    _if=any_changed([sql, role_cnf]),
)
for svc, ops in [("nginx", nginx_ops), ("named", bind_ops)]:
    sysvinit.service(name=f"{svc} reload", service=svc, running=True, reloaded=True,
                     _if=any_changed(ops))
    sysvinit.service(name=f"{svc} running", service=svc, running=True)

# php8.2-fpm: pyinfra's InitdStatus fact cannot name it (its regex takes no "." in a service
# name), so sysvinit.service never sees it running. Its status is asked with `service` instead.


def php_running():
    return host.get_fact(Command, f"service {php_svc} status > /dev/null 2>&1 && echo yes || echo no") == "yes"


server.shell(
    name=f"{php_svc} reload",
    commands=[f"service {php_svc} status > /dev/null 2>&1 && service {php_svc} reload || service {php_svc} start"],
    _if=any_changed(php_ops),
)
server.shell(name=f"{php_svc} running", commands=[f"service {php_svc} start"],
             _if=lambda: not php_running())
