-- Wazo stand-in: the part of the `asterisk` database the collection touches (created once, owner asterisk).
-- Config tables (replicated by xivo-master-slave-db-replication) get sample rows; cel/call_log are not replicated.
CREATE TABLE IF NOT EXISTS infos (
    uuid varchar(38) NOT NULL PRIMARY KEY,
    wazo_version varchar(64) NOT NULL,
    live_reload_enabled boolean NOT NULL DEFAULT true,
    timezone varchar(128),
    configured boolean NOT NULL DEFAULT true
);
-- Asterisk's CEL table as Wazo creates it (cel_odbc writes these columns; call_log_id is Wazo's).
CREATE TABLE IF NOT EXISTS call_log (
    id serial PRIMARY KEY,
    date timestamptz NOT NULL,
    date_answer timestamptz,
    date_end timestamptz,
    tenant_uuid varchar(36),
    source_name varchar(255),
    source_exten varchar(255),
    destination_exten varchar(255),
    direction varchar(255),
    user_field varchar(255),
    linkedid varchar(150)
);
CREATE TABLE IF NOT EXISTS cel (
    id serial PRIMARY KEY,
    eventtype varchar(30) NOT NULL,
    eventtime timestamp NOT NULL,
    userdeftype varchar(255) NOT NULL DEFAULT '',
    cid_name varchar(80) NOT NULL DEFAULT '',
    cid_num varchar(80) NOT NULL DEFAULT '',
    cid_ani varchar(80) NOT NULL DEFAULT '',
    cid_rdnis varchar(80) NOT NULL DEFAULT '',
    cid_dnid varchar(80) NOT NULL DEFAULT '',
    exten varchar(80) NOT NULL DEFAULT '',
    context varchar(80) NOT NULL DEFAULT '',
    channame varchar(80) NOT NULL DEFAULT '',
    appname varchar(80) NOT NULL DEFAULT '',
    appdata varchar(512) NOT NULL DEFAULT '',
    amaflags integer NOT NULL DEFAULT 0,
    accountcode varchar(20) NOT NULL DEFAULT '',
    peeraccount varchar(20) NOT NULL DEFAULT '',
    uniqueid varchar(150) NOT NULL DEFAULT '',
    linkedid varchar(150) NOT NULL DEFAULT '',
    userfield varchar(255) NOT NULL DEFAULT '',
    peer varchar(80) NOT NULL DEFAULT '',
    extra text,
    call_log_id integer REFERENCES call_log (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS cel__idx__call_log_id ON cel (call_log_id);
CREATE INDEX IF NOT EXISTS cel__idx__linkedid ON cel (linkedid);
CREATE TABLE IF NOT EXISTS queue_log (
    time varchar(26) NOT NULL DEFAULT '', callid varchar(32) NOT NULL DEFAULT '', queuename varchar(50) NOT NULL DEFAULT '',
    agent varchar(50) NOT NULL DEFAULT '', event varchar(20) NOT NULL DEFAULT '', data1 varchar(30) DEFAULT ''
);
CREATE TABLE IF NOT EXISTS stat_call_on_queue (id serial PRIMARY KEY, callid varchar(32) NOT NULL, time timestamp NOT NULL);
-- configuration (replicated)
CREATE TABLE IF NOT EXISTS tenant (uuid varchar(36) PRIMARY KEY, name varchar(255));
CREATE TABLE IF NOT EXISTS context (id serial PRIMARY KEY, name varchar(79) NOT NULL UNIQUE, displayname varchar(128),
    contexttype varchar(40) NOT NULL DEFAULT 'internal', tenant_uuid varchar(36) REFERENCES tenant (uuid));
CREATE TABLE IF NOT EXISTS userfeatures (id serial PRIMARY KEY, uuid varchar(38) NOT NULL UNIQUE,
    firstname varchar(128) NOT NULL DEFAULT '', lastname varchar(128) NOT NULL DEFAULT '',
    enablednd integer NOT NULL DEFAULT 0, enableunc integer NOT NULL DEFAULT 0, destunc varchar(128) NOT NULL DEFAULT '',
    tenant_uuid varchar(36) REFERENCES tenant (uuid));
CREATE TABLE IF NOT EXISTS extensions (id serial PRIMARY KEY, context varchar(79) NOT NULL, exten varchar(40) NOT NULL,
    type varchar(20) NOT NULL DEFAULT 'user', typeval varchar(255) NOT NULL DEFAULT '0', UNIQUE (exten, context));
CREATE TABLE IF NOT EXISTS voicemail (uniqueid serial PRIMARY KEY, context varchar(79) NOT NULL, mailbox varchar(40) NOT NULL,
    fullname varchar(80) NOT NULL DEFAULT '', UNIQUE (mailbox, context));
GRANT ALL ON ALL TABLES IN SCHEMA public TO asterisk;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO asterisk;
