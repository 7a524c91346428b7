BEGIN TRANSACTION;
CREATE TABLE aliases (
	model_id INTEGER NOT NULL, 
	alias VARCHAR(100) NOT NULL, 
	version INTEGER NOT NULL, 
	decision VARCHAR(80) NOT NULL, 
	seq INTEGER NOT NULL, 
	updated_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (model_id, alias), 
	FOREIGN KEY(model_id, version) REFERENCES versions (model_id, version)
);
INSERT INTO "aliases" VALUES(1,'prod',1,'sha256:abababababababababababababababababababababababababababababababab',1,'2026-01-01T00:00:00.000000Z');
CREATE TABLE audit (
	seq INTEGER NOT NULL, 
	time VARCHAR(40) NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	name VARCHAR(200), 
	version INTEGER, 
	target VARCHAR(120), 
	accepted BOOLEAN NOT NULL, 
	decision VARCHAR(80), 
	body BLOB NOT NULL, 
	entry_hash VARCHAR(80) NOT NULL, 
	PRIMARY KEY (seq)
);
INSERT INTO "audit" VALUES(1,'2026-01-01T00:00:00.000000Z','model.register','credit-risk',NULL,'version',1,NULL,X'7B226163636570746564223A747275652C226163746F72223A226369222C226465636973696F6E223A6E756C6C2C2264657461696C73223A7B7D2C226B696E64223A226D6F64656C2E7265676973746572222C226E616D65223A226372656469742D7269736B222C2270726576223A227368613235363A30303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030222C22736368656D61223A2268747470733A2F2F6D6C70726F762E6465762F736368656D61732F61756469742D656E7472792F7631222C22736571223A312C22746172676574223A2276657273696F6E222C2274696D65223A22323032362D30312D30315430303A30303A30302E3030303030305A222C2276657273696F6E223A6E756C6C7D','sha256:7357106ef05896e55ee7b3a87d4baafab6929141250bd9af21e777be777241df');
CREATE TABLE checkpoints (
	seq INTEGER NOT NULL, 
	entry_hash VARCHAR(80) NOT NULL, 
	time VARCHAR(40) NOT NULL, 
	bundle BLOB NOT NULL, 
	PRIMARY KEY (seq)
);
INSERT INTO "checkpoints" VALUES(1,'sha256:7357106ef05896e55ee7b3a87d4baafab6929141250bd9af21e777be777241df','t',X'00FF62756E646C65');
CREATE TABLE decisions (
	digest VARCHAR(80) NOT NULL, 
	bundle BLOB NOT NULL, 
	PRIMARY KEY (digest)
);
CREATE TABLE deliveries (
	id INTEGER NOT NULL, 
	event_id INTEGER NOT NULL, 
	hook VARCHAR(100) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at FLOAT NOT NULL, 
	lease_until FLOAT, 
	last_error TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (event_id, hook), 
	FOREIGN KEY(event_id) REFERENCES events (id)
);
CREATE TABLE deployments (
	name VARCHAR(200) NOT NULL, 
	version INTEGER NOT NULL, 
	spec_digest VARCHAR(80) NOT NULL, 
	statement VARCHAR(80) NOT NULL, 
	decision VARCHAR(80) NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	stage_decision VARCHAR(80), 
	created_at VARCHAR(40) NOT NULL, 
	created_seq INTEGER NOT NULL, 
	PRIMARY KEY (name, version)
);
CREATE TABLE events (
	id INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	time VARCHAR(40) NOT NULL, 
	payload BLOB NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	created_at VARCHAR(40) NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
INSERT INTO "models" VALUES(1,'credit-risk','2026-01-01T00:00:00.000000Z');
CREATE TABLE registry_state (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "registry_state" VALUES('schema_version','1');
INSERT INTO "registry_state" VALUES('registry_id','00000000-0000-4000-8000-000000000000');
CREATE TABLE reviews (
	id INTEGER NOT NULL, 
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	digest VARCHAR(80) NOT NULL, 
	added_at VARCHAR(40) NOT NULL, 
	seq INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(model_id, version) REFERENCES versions (model_id, version), 
	UNIQUE (model_id, version, digest)
);
CREATE TABLE versions (
	model_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	identity VARCHAR(80) NOT NULL, 
	root_digest VARCHAR(80) NOT NULL, 
	files_digest VARCHAR(80) NOT NULL, 
	evidence_digest VARCHAR(80) NOT NULL, 
	registration VARCHAR(80) NOT NULL, 
	scan_digest VARCHAR(80), 
	reproducible BOOLEAN NOT NULL, 
	stage VARCHAR(16) NOT NULL, 
	stage_decision VARCHAR(80), 
	created_at VARCHAR(40) NOT NULL, 
	created_seq INTEGER NOT NULL, 
	PRIMARY KEY (model_id, version), 
	FOREIGN KEY(model_id) REFERENCES models (id)
);
INSERT INTO "versions" VALUES(1,1,'mlid:sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','sha256:abababababababababababababababababababababababababababababababab','sha256:abababababababababababababababababababababababababababababababab','sha256:abababababababababababababababababababababababababababababababab','sha256:abababababababababababababababababababababababababababababababab',NULL,1,'Staging','sha256:abababababababababababababababababababababababababababababababab','2026-01-01T00:00:00.000000Z',1);
CREATE INDEX ix_audit_target ON audit (name, target, seq);
CREATE INDEX ix_versions_stage ON versions (model_id, stage, version);
CREATE INDEX ix_versions_identity ON versions (model_id, identity);
CREATE INDEX ix_versions_root ON versions (root_digest);
CREATE INDEX ix_deliveries_due ON deliveries (state, next_attempt_at);
COMMIT;
