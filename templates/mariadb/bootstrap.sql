-- Written by provision for {{ site.domain }}. Every statement is idempotent: running it again is safe.
-- Backslash escapes in the string literals below need the default sql_mode, so make sure of it.
SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '');
{% if db.role == "primary" %}
-- Writable (a promoted replica becomes so here, without a restart).
SET GLOBAL read_only = OFF;
CREATE DATABASE IF NOT EXISTS `{{ db.name }}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
{% for client in db.clients %}
CREATE USER IF NOT EXISTS '{{ db.user }}'@'{{ client }}' IDENTIFIED BY {{ db.password | sql_string }};
ALTER USER '{{ db.user }}'@'{{ client }}' IDENTIFIED BY {{ db.password | sql_string }};
GRANT ALL PRIVILEGES ON `{{ db.name }}`.* TO '{{ db.user }}'@'{{ client }}';
{% endfor %}{% for replica in db.replicas %}
CREATE USER IF NOT EXISTS '{{ db.replication_user }}'@'{{ replica }}' IDENTIFIED BY {{ db.replication_password | sql_string }};
ALTER USER '{{ db.replication_user }}'@'{{ replica }}' IDENTIFIED BY {{ db.replication_password | sql_string }};
GRANT REPLICATION SLAVE, REPLICATION CLIENT, RELOAD ON *.* TO '{{ db.replication_user }}'@'{{ replica }}';
-- A new replica seeds itself with a consistent copy of the database (mariadb-dump --gtid).
GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON `{{ db.name }}`.* TO '{{ db.replication_user }}'@'{{ replica }}';
{% endfor %}
-- The accounts of these users for hosts the inventory no longer names (a web host or a replica
-- removed) are dropped with their grants: the plan lists them from the probe. The replicas follow
-- (DROP USER is written to the binary log); IF EXISTS, because a replica seeded from a dump of the
-- site's database lacks the accounts made before it (a replica's SQL thread stops on an error).
SET SESSION group_concat_max_len = 1048576;
SET @provision_stale = (SELECT GROUP_CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user
    WHERE (User = {{ db.user | sql_string }} AND Host NOT IN ({% for client in db.clients %}{% if not loop.first %}, {% endif %}{{ client | sql_string }}{% endfor %})){% if db.replication_user %}
       OR (User = {{ db.replication_user | sql_string }}{% if db.replicas %} AND Host NOT IN ({% for replica in db.replicas %}{% if not loop.first %}, {% endif %}{{ replica | sql_string }}{% endfor %}){% endif %}){% endif %});
SET @provision_drop = IF(@provision_stale IS NULL, 'DO 0', CONCAT('DROP USER IF EXISTS ', @provision_stale));
PREPARE provision_drop FROM @provision_drop;
EXECUTE provision_drop;
DEALLOCATE PREPARE provision_drop;
{% if db.app_sql %}
{{ db.app_sql }}{% endif %}{% else %}
-- Replica of {{ db.primary }}: read-only (a demoted primary becomes so here, without a restart),
-- following it from its current binary log position (GTID).
SET GLOBAL read_only = ON;
STOP SLAVE;
CHANGE MASTER TO
    MASTER_HOST = {{ db.primary | sql_string }},
    MASTER_USER = {{ db.replication_user | sql_string }},
    MASTER_PASSWORD = {{ db.replication_password | sql_string }},
    MASTER_CONNECT_RETRY = 5,
    MASTER_USE_GTID = slave_pos;
START SLAVE;
{% endif %}
