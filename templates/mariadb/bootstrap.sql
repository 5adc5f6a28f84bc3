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
{% endfor %}{% if db.demo %}
CREATE TABLE IF NOT EXISTS `{{ db.name }}`.`provision_demo` (
    id INT NOT NULL PRIMARY KEY,
    message VARCHAR(255) NOT NULL
);
INSERT INTO `{{ db.name }}`.`provision_demo` (id, message) VALUES (1, {{ db.demo_message | sql_string }})
    ON DUPLICATE KEY UPDATE message = VALUES(message);
{% endif %}{% else %}
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
