-- Wazo stand-in sample configuration and CEL (loaded once, when the tables are empty).
INSERT INTO tenant VALUES ('8a9b6e5c-0000-4000-8000-00000000a001', 'lab');
INSERT INTO context (name, displayname, tenant_uuid) VALUES
  ('default', 'Default', '8a9b6e5c-0000-4000-8000-00000000a001'),
  ('from-extern', 'Incalls', '8a9b6e5c-0000-4000-8000-00000000a001');
INSERT INTO userfeatures (uuid, firstname, lastname, tenant_uuid) VALUES
  ('5f2a1a4e-0000-4000-8000-000000001001', 'Alice', 'Lab', '8a9b6e5c-0000-4000-8000-00000000a001'),
  ('5f2a1a4e-0000-4000-8000-000000001002', 'Bob', 'Lab', '8a9b6e5c-0000-4000-8000-00000000a001'),
  ('5f2a1a4e-0000-4000-8000-000000001003', 'Carol', 'Lab', '8a9b6e5c-0000-4000-8000-00000000a001');
INSERT INTO extensions (context, exten, typeval) VALUES ('default', '1001', '1'), ('default', '1002', '2'), ('default', '1003', '3');
INSERT INTO voicemail (context, mailbox, fullname) VALUES ('default', '1001', 'Alice Lab'), ('default', '1002', 'Bob Lab');
INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, exten, context, channame, appname, uniqueid, linkedid) VALUES
  ('CHAN_START', now() - interval '1 hour', 'Alice Lab', '1001', '1002', 'default', 'PJSIP/alice-00000001', '', '1700000000.1', '1700000000.1'),
  ('ANSWER', now() - interval '1 hour', 'Alice Lab', '1001', '1002', 'default', 'PJSIP/alice-00000001', 'Dial', '1700000000.1', '1700000000.1'),
  ('HANGUP', now() - interval '59 minutes', 'Alice Lab', '1001', '1002', 'default', 'PJSIP/alice-00000001', '', '1700000000.1', '1700000000.1'),
  ('CHAN_END', now() - interval '59 minutes', 'Alice Lab', '1001', '1002', 'default', 'PJSIP/alice-00000001', '', '1700000000.1', '1700000000.1');
