CREATE TABLE IF NOT EXISTS `{{ demo.database }}`.`provision_demo` (
    id INT NOT NULL PRIMARY KEY,
    message VARCHAR(255) NOT NULL
);
INSERT INTO `{{ demo.database }}`.`provision_demo` (id, message) VALUES (1, {{ demo.message | sql_string }})
    ON DUPLICATE KEY UPDATE message = VALUES(message);
