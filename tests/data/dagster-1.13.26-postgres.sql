--
-- PostgreSQL database dump
--

\restrict qDX78jgjuEkFV80U9XoIdi2noexMEgxai3pGko25RHn3KGPEtNmrqQhzBRhrzao

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: asset_check_executions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_check_executions (
    id bigint NOT NULL,
    asset_key text,
    check_name text,
    partition text,
    run_id character varying(255),
    execution_status character varying(255),
    evaluation_event text,
    evaluation_event_timestamp timestamp without time zone,
    evaluation_event_storage_id bigint,
    materialization_event_storage_id bigint,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: asset_check_executions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_check_executions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_check_executions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_check_executions_id_seq OWNED BY public.asset_check_executions.id;


--
-- Name: asset_daemon_asset_evaluations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_daemon_asset_evaluations (
    id bigint NOT NULL,
    evaluation_id bigint,
    asset_key text,
    asset_evaluation_body text,
    num_requested integer,
    num_skipped integer,
    num_discarded integer,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: asset_daemon_asset_evaluations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_daemon_asset_evaluations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_daemon_asset_evaluations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_daemon_asset_evaluations_id_seq OWNED BY public.asset_daemon_asset_evaluations.id;


--
-- Name: asset_event_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_event_tags (
    id bigint NOT NULL,
    event_id bigint,
    asset_key text NOT NULL,
    key text NOT NULL,
    value text,
    event_timestamp timestamp without time zone
);


--
-- Name: asset_event_tags_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_event_tags_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_event_tags_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_event_tags_id_seq OWNED BY public.asset_event_tags.id;


--
-- Name: asset_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.asset_keys (
    id bigint NOT NULL,
    asset_key character varying(512),
    last_materialization text,
    last_run_id character varying(255),
    asset_details text,
    wipe_timestamp timestamp without time zone,
    last_materialization_timestamp timestamp without time zone,
    tags text,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    cached_status_data text
);


--
-- Name: asset_keys_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.asset_keys_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_keys_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.asset_keys_id_seq OWNED BY public.asset_keys.id;


--
-- Name: backfill_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.backfill_tags (
    id bigint NOT NULL,
    backfill_id character varying(255),
    key text,
    value text
);


--
-- Name: backfill_tags_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.backfill_tags_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: backfill_tags_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.backfill_tags_id_seq OWNED BY public.backfill_tags.id;


--
-- Name: bulk_actions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bulk_actions (
    id bigint NOT NULL,
    key character varying(32) NOT NULL,
    status character varying(255) NOT NULL,
    "timestamp" timestamp without time zone NOT NULL,
    body text,
    action_type character varying(32),
    selector_id text,
    job_name text
);


--
-- Name: bulk_actions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.bulk_actions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: bulk_actions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.bulk_actions_id_seq OWNED BY public.bulk_actions.id;


--
-- Name: concurrency_limits; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.concurrency_limits (
    id bigint NOT NULL,
    concurrency_key character varying(512) NOT NULL,
    "limit" integer NOT NULL,
    using_default_limit boolean DEFAULT false NOT NULL,
    update_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: concurrency_limits_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.concurrency_limits_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: concurrency_limits_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.concurrency_limits_id_seq OWNED BY public.concurrency_limits.id;


--
-- Name: concurrency_slots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.concurrency_slots (
    id bigint NOT NULL,
    concurrency_key text NOT NULL,
    run_id text,
    step_key text,
    deleted boolean NOT NULL,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: concurrency_slots_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.concurrency_slots_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: concurrency_slots_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.concurrency_slots_id_seq OWNED BY public.concurrency_slots.id;


--
-- Name: daemon_heartbeats; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.daemon_heartbeats (
    id bigint NOT NULL,
    daemon_type character varying(255) NOT NULL,
    daemon_id character varying(255),
    "timestamp" timestamp without time zone NOT NULL,
    body text
);


--
-- Name: daemon_heartbeats_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.daemon_heartbeats_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: daemon_heartbeats_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.daemon_heartbeats_id_seq OWNED BY public.daemon_heartbeats.id;


--
-- Name: dynamic_partitions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.dynamic_partitions (
    id bigint NOT NULL,
    partitions_def_name text NOT NULL,
    partition text NOT NULL,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: dynamic_partitions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.dynamic_partitions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dynamic_partitions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.dynamic_partitions_id_seq OWNED BY public.dynamic_partitions.id;


--
-- Name: event_logs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.event_logs (
    id bigint NOT NULL,
    run_id character varying(255),
    event text NOT NULL,
    dagster_event_type text,
    "timestamp" timestamp without time zone,
    step_key text,
    asset_key text,
    partition text
);


--
-- Name: event_logs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.event_logs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: event_logs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.event_logs_id_seq OWNED BY public.event_logs.id;


--
-- Name: instance_info; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.instance_info (
    id bigint NOT NULL,
    run_storage_id text
);


--
-- Name: instance_info_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.instance_info_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: instance_info_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.instance_info_id_seq OWNED BY public.instance_info.id;


--
-- Name: instigators; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.instigators (
    id bigint NOT NULL,
    selector_id character varying(255),
    repository_selector_id character varying(255),
    status character varying(63),
    instigator_type character varying(63),
    instigator_body text,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    update_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: instigators_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.instigators_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: instigators_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.instigators_id_seq OWNED BY public.instigators.id;


--
-- Name: job_ticks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.job_ticks (
    id bigint NOT NULL,
    job_origin_id character varying(255),
    selector_id character varying(255),
    status character varying(63),
    type character varying(63),
    "timestamp" timestamp without time zone,
    tick_body text,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    update_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: job_ticks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.job_ticks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: job_ticks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.job_ticks_id_seq OWNED BY public.job_ticks.id;


--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id bigint NOT NULL,
    job_origin_id character varying(255),
    selector_id character varying(255),
    repository_origin_id character varying(255),
    status character varying(63),
    job_type character varying(63),
    job_body text,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    update_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.jobs_id_seq OWNED BY public.jobs.id;


--
-- Name: kvs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.kvs (
    id bigint NOT NULL,
    key text NOT NULL,
    value text
);


--
-- Name: kvs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.kvs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: kvs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.kvs_id_seq OWNED BY public.kvs.id;


--
-- Name: pending_steps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pending_steps (
    id bigint NOT NULL,
    concurrency_key text NOT NULL,
    run_id text,
    step_key text,
    priority integer,
    assigned_timestamp timestamp without time zone,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP
);


--
-- Name: pending_steps_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.pending_steps_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: pending_steps_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.pending_steps_id_seq OWNED BY public.pending_steps.id;


--
-- Name: run_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_tags (
    id bigint NOT NULL,
    run_id character varying(255),
    key text,
    value text
);


--
-- Name: run_tags_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.run_tags_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: run_tags_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.run_tags_id_seq OWNED BY public.run_tags.id;


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id bigint NOT NULL,
    run_id character varying(255),
    snapshot_id character varying(255),
    pipeline_name text,
    mode text,
    status character varying(63),
    run_body text,
    partition text,
    partition_set text,
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    update_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    start_time double precision,
    end_time double precision,
    backfill_id character varying(255)
);


--
-- Name: runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.runs_id_seq OWNED BY public.runs.id;


--
-- Name: secondary_indexes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secondary_indexes (
    id bigint NOT NULL,
    name character varying(512),
    create_timestamp timestamp without time zone DEFAULT CURRENT_TIMESTAMP,
    migration_completed timestamp without time zone
);


--
-- Name: secondary_indexes_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.secondary_indexes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: secondary_indexes_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.secondary_indexes_id_seq OWNED BY public.secondary_indexes.id;


--
-- Name: snapshots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.snapshots (
    id bigint NOT NULL,
    snapshot_id character varying(255) NOT NULL,
    snapshot_body bytea NOT NULL,
    snapshot_type character varying(63) NOT NULL
);


--
-- Name: snapshots_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.snapshots_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: snapshots_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.snapshots_id_seq OWNED BY public.snapshots.id;


--
-- Name: asset_check_executions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_check_executions ALTER COLUMN id SET DEFAULT nextval('public.asset_check_executions_id_seq'::regclass);


--
-- Name: asset_daemon_asset_evaluations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_daemon_asset_evaluations ALTER COLUMN id SET DEFAULT nextval('public.asset_daemon_asset_evaluations_id_seq'::regclass);


--
-- Name: asset_event_tags id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_event_tags ALTER COLUMN id SET DEFAULT nextval('public.asset_event_tags_id_seq'::regclass);


--
-- Name: asset_keys id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_keys ALTER COLUMN id SET DEFAULT nextval('public.asset_keys_id_seq'::regclass);


--
-- Name: backfill_tags id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_tags ALTER COLUMN id SET DEFAULT nextval('public.backfill_tags_id_seq'::regclass);


--
-- Name: bulk_actions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bulk_actions ALTER COLUMN id SET DEFAULT nextval('public.bulk_actions_id_seq'::regclass);


--
-- Name: concurrency_limits id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.concurrency_limits ALTER COLUMN id SET DEFAULT nextval('public.concurrency_limits_id_seq'::regclass);


--
-- Name: concurrency_slots id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.concurrency_slots ALTER COLUMN id SET DEFAULT nextval('public.concurrency_slots_id_seq'::regclass);


--
-- Name: daemon_heartbeats id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daemon_heartbeats ALTER COLUMN id SET DEFAULT nextval('public.daemon_heartbeats_id_seq'::regclass);


--
-- Name: dynamic_partitions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dynamic_partitions ALTER COLUMN id SET DEFAULT nextval('public.dynamic_partitions_id_seq'::regclass);


--
-- Name: event_logs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_logs ALTER COLUMN id SET DEFAULT nextval('public.event_logs_id_seq'::regclass);


--
-- Name: instance_info id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instance_info ALTER COLUMN id SET DEFAULT nextval('public.instance_info_id_seq'::regclass);


--
-- Name: instigators id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instigators ALTER COLUMN id SET DEFAULT nextval('public.instigators_id_seq'::regclass);


--
-- Name: job_ticks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.job_ticks ALTER COLUMN id SET DEFAULT nextval('public.job_ticks_id_seq'::regclass);


--
-- Name: jobs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);


--
-- Name: kvs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kvs ALTER COLUMN id SET DEFAULT nextval('public.kvs_id_seq'::regclass);


--
-- Name: pending_steps id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pending_steps ALTER COLUMN id SET DEFAULT nextval('public.pending_steps_id_seq'::regclass);


--
-- Name: run_tags id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_tags ALTER COLUMN id SET DEFAULT nextval('public.run_tags_id_seq'::regclass);


--
-- Name: runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs ALTER COLUMN id SET DEFAULT nextval('public.runs_id_seq'::regclass);


--
-- Name: secondary_indexes id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secondary_indexes ALTER COLUMN id SET DEFAULT nextval('public.secondary_indexes_id_seq'::regclass);


--
-- Name: snapshots id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots ALTER COLUMN id SET DEFAULT nextval('public.snapshots_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.alembic_version (version_num) FROM stdin;
29b539ebc72a
\.


--
-- Data for Name: asset_check_executions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.asset_check_executions (id, asset_key, check_name, partition, run_id, execution_status, evaluation_event, evaluation_event_timestamp, evaluation_event_storage_id, materialization_event_storage_id, create_timestamp) FROM stdin;
\.


--
-- Data for Name: asset_daemon_asset_evaluations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.asset_daemon_asset_evaluations (id, evaluation_id, asset_key, asset_evaluation_body, num_requested, num_skipped, num_discarded, create_timestamp) FROM stdin;
\.


--
-- Data for Name: asset_event_tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.asset_event_tags (id, event_id, asset_key, key, value, event_timestamp) FROM stdin;
\.


--
-- Data for Name: asset_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.asset_keys (id, asset_key, last_materialization, last_run_id, asset_details, wipe_timestamp, last_materialization_timestamp, tags, create_timestamp, cached_status_data) FROM stdin;
\.


--
-- Data for Name: backfill_tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.backfill_tags (id, backfill_id, key, value) FROM stdin;
\.


--
-- Data for Name: bulk_actions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.bulk_actions (id, key, status, "timestamp", body, action_type, selector_id, job_name) FROM stdin;
\.


--
-- Data for Name: concurrency_limits; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.concurrency_limits (id, concurrency_key, "limit", using_default_limit, update_timestamp, create_timestamp) FROM stdin;
\.


--
-- Data for Name: concurrency_slots; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.concurrency_slots (id, concurrency_key, run_id, step_key, deleted, create_timestamp) FROM stdin;
\.


--
-- Data for Name: daemon_heartbeats; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.daemon_heartbeats (id, daemon_type, daemon_id, "timestamp", body) FROM stdin;
\.


--
-- Data for Name: dynamic_partitions; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.dynamic_partitions (id, partitions_def_name, partition, create_timestamp) FROM stdin;
\.


--
-- Data for Name: event_logs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.event_logs (id, run_id, event, dagster_event_type, "timestamp", step_key, asset_key, partition) FROM stdin;
1	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": null, "event_type_value": "PIPELINE_START", "logging_tags": {}, "message": "Started execution of run for \\"previous_version_job\\".", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": null, "step_key": null, "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": null, "timestamp": 1796139690.615479, "user_message": "Started execution of run for \\"previous_version_job\\"."}	PIPELINE_START	2026-12-01 15:41:30.615479	\N	\N	\N
2	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "EngineEventData", "error": null, "marker_end": null, "marker_start": null, "metadata_entries": [{"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "5264"}, "label": "pid"}, {"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "['hello']"}, "label": "step_keys"}]}, "event_type_value": "ENGINE_EVENT", "logging_tags": {}, "message": "Executing steps in process (pid: 5264)", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": null, "step_key": null, "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": null, "timestamp": 1796139690.6638472, "user_message": "Executing steps in process (pid: 5264)"}	ENGINE_EVENT	2026-12-01 15:41:30.663847	\N	\N	\N
3	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "EngineEventData", "error": null, "marker_end": null, "marker_start": "resources", "metadata_entries": []}, "event_type_value": "RESOURCE_INIT_STARTED", "logging_tags": {}, "message": "Starting initialization of resources [io_manager].", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.6717587, "user_message": "Starting initialization of resources [io_manager]."}	RESOURCE_INIT_STARTED	2026-12-01 15:41:30.671759	hello	\N	\N
4	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "EngineEventData", "error": null, "marker_end": "resources", "marker_start": null, "metadata_entries": [{"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "PythonArtifactMetadataEntryData", "module": "dagster._core.storage.mem_io_manager", "name": "InMemoryIOManager"}, "label": "io_manager"}, {"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "0.06ms"}, "label": "io_manager:init_time"}]}, "event_type_value": "RESOURCE_INIT_SUCCESS", "logging_tags": {}, "message": "Finished initialization of resources [io_manager].", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.6819205, "user_message": "Finished initialization of resources [io_manager]."}	RESOURCE_INIT_SUCCESS	2026-12-01 15:41:30.681921	hello	\N	\N
5	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "ComputeLogsCaptureData", "external_stderr_url": null, "external_stdout_url": null, "external_url": null, "log_key": "xnqzoffr", "shell_cmd": null, "step_keys": ["hello"]}, "event_type_value": "LOGS_CAPTURED", "logging_tags": {}, "message": "Capturing logs for process (pid: 5264).", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": null, "step_key": null, "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": null, "timestamp": 1796139690.7060113, "user_message": "Capturing logs for process (pid: 5264)."}	LOGS_CAPTURED	2026-12-01 15:41:30.706011	\N	\N	\N
6	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": null, "event_type_value": "STEP_START", "logging_tags": {"job_name": "previous_version_job", "op_name": "hello", "resource_fn_name": "None", "resource_name": "None", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello"}, "message": "Started execution of step \\"hello\\".", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": "COMPUTE"}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.7446582, "user_message": "Started execution of step \\"hello\\"."}	STEP_START	2026-12-01 15:41:30.744658	hello	\N	\N
7	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "StepOutputData", "metadata_entries": [], "step_output_handle": {"__class__": "StepOutputHandle", "mapping_key": null, "output_name": "result", "step_key": "hello"}, "type_check_data": {"__class__": "TypeCheckData", "description": null, "label": "result", "metadata_entries": [], "success": true}, "version": null}, "event_type_value": "STEP_OUTPUT", "logging_tags": {"job_name": "previous_version_job", "op_name": "hello", "resource_fn_name": "None", "resource_name": "None", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello"}, "message": "Yielded output \\"result\\" of type \\"String\\". (Type check passed).", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": "COMPUTE"}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.7526338, "user_message": "Yielded output \\"result\\" of type \\"String\\". (Type check passed)."}	STEP_OUTPUT	2026-12-01 15:41:30.752634	hello	\N	\N
8	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "HandledOutputData", "manager_key": "io_manager", "metadata_entries": [], "output_name": "result"}, "event_type_value": "HANDLED_OUTPUT", "logging_tags": {"job_name": "previous_version_job", "op_name": "hello", "resource_fn_name": "None", "resource_name": "None", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello"}, "message": "Handled output \\"result\\" using IO manager \\"io_manager\\"", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": "COMPUTE"}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.759706, "user_message": "Handled output \\"result\\" using IO manager \\"io_manager\\""}	HANDLED_OUTPUT	2026-12-01 15:41:30.759706	hello	\N	\N
9	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "StepSuccessData", "duration_ms": 14.398737999727018}, "event_type_value": "STEP_SUCCESS", "logging_tags": {"job_name": "previous_version_job", "op_name": "hello", "resource_fn_name": "None", "resource_name": "None", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello"}, "message": "Finished execution of step \\"hello\\" in 14ms.", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}, "step_handle": {"__class__": "StepHandle", "key": "hello", "solid_handle": {"__class__": "SolidHandle", "name": "hello", "parent": null}}, "step_key": "hello", "step_kind_value": "COMPUTE"}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": "hello", "timestamp": 1796139690.7661276, "user_message": "Finished execution of step \\"hello\\" in 14ms."}	STEP_SUCCESS	2026-12-01 15:41:30.766128	hello	\N	\N
10	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": {"__class__": "EngineEventData", "error": null, "marker_end": null, "marker_start": null, "metadata_entries": [{"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "5264"}, "label": "pid"}, {"__class__": "EventMetadataEntry", "description": null, "entry_data": {"__class__": "TextMetadataEntryData", "text": "['hello']"}, "label": "step_keys"}]}, "event_type_value": "ENGINE_EVENT", "logging_tags": {}, "message": "Finished steps in process (pid: 5264) in 113ms", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": null, "step_key": null, "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": null, "timestamp": 1796139690.783794, "user_message": "Finished steps in process (pid: 5264) in 113ms"}	ENGINE_EVENT	2026-12-01 15:41:30.783794	\N	\N	\N
11	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	{"__class__": "EventLogEntry", "dagster_event": {"__class__": "DagsterEvent", "event_specific_data": null, "event_type_value": "PIPELINE_SUCCESS", "logging_tags": {}, "message": "Finished execution of run for \\"previous_version_job\\".", "pid": 5264, "pipeline_name": "previous_version_job", "solid_handle": null, "step_handle": null, "step_key": null, "step_kind_value": null}, "error_info": null, "level": 10, "message": "", "pipeline_name": "previous_version_job", "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "step_key": null, "timestamp": 1796139690.7904465, "user_message": "Finished execution of run for \\"previous_version_job\\"."}	PIPELINE_SUCCESS	2026-12-01 15:41:30.790447	\N	\N	\N
\.


--
-- Data for Name: instance_info; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.instance_info (id, run_storage_id) FROM stdin;
\.


--
-- Data for Name: instigators; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.instigators (id, selector_id, repository_selector_id, status, instigator_type, instigator_body, create_timestamp, update_timestamp) FROM stdin;
\.


--
-- Data for Name: job_ticks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.job_ticks (id, job_origin_id, selector_id, status, type, "timestamp", tick_body, create_timestamp, update_timestamp) FROM stdin;
\.


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.jobs (id, job_origin_id, selector_id, repository_origin_id, status, job_type, job_body, create_timestamp, update_timestamp) FROM stdin;
\.


--
-- Data for Name: kvs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.kvs (id, key, value) FROM stdin;
\.


--
-- Data for Name: pending_steps; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.pending_steps (id, concurrency_key, run_id, step_key, priority, assigned_timestamp, create_timestamp) FROM stdin;
\.


--
-- Data for Name: run_tags; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.run_tags (id, run_id, key, value) FROM stdin;
1	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	maestro/tenant	default
\.


--
-- Data for Name: runs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.runs (id, run_id, snapshot_id, pipeline_name, mode, status, run_body, partition, partition_set, create_timestamp, update_timestamp, start_time, end_time, backfill_id) FROM stdin;
1	2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b	8857c457508b0a80f9eee5df5ed459b6db211e45	previous_version_job	\N	SUCCESS	{"__class__": "PipelineRun", "asset_check_selection": null, "asset_selection": {"__frozenset__": []}, "execution_plan_snapshot_id": "8730578ca6e7f2430e21999f5a525543132349d5", "external_pipeline_origin": null, "has_repository_load_data": false, "mode": null, "parent_run_id": null, "partitions_subset": null, "pipeline_code_origin": null, "pipeline_name": "previous_version_job", "pipeline_snapshot_id": "8857c457508b0a80f9eee5df5ed459b6db211e45", "root_run_id": null, "run_config": {}, "run_id": "2cb1d7db-1aeb-4ee0-ac48-0e79dbc1f77b", "run_op_concurrency": null, "solid_selection": null, "solids_to_execute": null, "status": {"__enum__": "PipelineRunStatus.SUCCESS"}, "step_keys_to_execute": ["hello"], "tags": {"maestro/tenant": "default"}}	\N	\N	2026-12-01 15:41:30.578781	2026-12-01 15:41:30.790447	1796139690.615479	1796139690.790447	\N
\.


--
-- Data for Name: secondary_indexes; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.secondary_indexes (id, name, create_timestamp, migration_completed) FROM stdin;
1	run_partitions	2026-12-01 15:41:30.040727	2026-12-01 15:41:30.03503
2	run_repo_label_tags	2026-12-01 15:41:30.056991	2026-12-01 15:41:30.055029
3	bulk_action_types	2026-12-01 15:41:30.07936	2026-12-01 15:41:30.077233
4	run_backfill_id	2026-12-01 15:41:30.098417	2026-12-01 15:41:30.096462
5	backfill_job_name_and_tags	2026-12-01 15:41:30.114669	2026-12-01 15:41:30.109666
6	backfill_end_timestamp	2026-12-01 15:41:30.129619	2026-12-01 15:41:30.12769
7	run_start_end_overwritten	2026-12-01 15:41:30.160432	2026-12-01 15:41:30.157301
8	asset_key_table	2026-12-01 15:41:30.310114	2026-12-01 15:41:30.305339
9	asset_key_index_columns	2026-12-01 15:41:30.323773	2026-12-01 15:41:30.320673
10	schedule_jobs_selector_id	2026-12-01 15:41:30.478894	2026-12-01 15:41:30.474529
11	schedule_ticks_selector_id	2026-12-01 15:41:30.515983	2026-12-01 15:41:30.506552
\.


--
-- Data for Name: snapshots; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.snapshots (id, snapshot_id, snapshot_body, snapshot_type) FROM stdin;
1	8857c457508b0a80f9eee5df5ed459b6db211e45	\\x789ced5c4973e3b612fe2b2c5d72491cee2472f36c892b8e941a398757b18b85a56131a14886a43cd19bf27f7f0017ad240dada399e783c7430a6c747ffd75a31b22fc79100434c2791e04839fb4c1ef610a5118c338c6693e498ac1f7da8026310f1f839c4e608a83bcf9e427edf3fab36fcb71e372d8eaf3388a824686bc1d9079f037cc4b01d7f1bc4bd0dd3c2dd5902218e4340bd3224c6231209e4591b809f16c1a3ce16806f9f2260f21622bd78fe113c4418ca72025cbe9c4cd6af6c55518b35a8952e4860ebf8a8fafae87ff193c8bb139c511ce82fa917a8e428c0a529ce1a9b4ab995c0e7f9324d1eef60d06fb5957ceb6346f71a960dff8edf5edf5c71613db9e1a9723cae7de8c46b7e553dd187c8812dcc996e383504db74461797d42183edc8eaeef5ec0e1263e230a72b22506cdd50911b819be647f35f88f58187625a9f9c31822a045925d11709863f8c442e0bbd8b6a8c34d008ab963f9d4e02ef53cc3200e3a63a6a8efd5f81d41f59de00ffe18de8c86bb249c3f17d1bebb6a0f9bde2943666923d3756c7960f9bac72c8f22ee224a5d13218fdad8e136363c171c6a5d847bf6d5fde4fe59e4a1dd75db729088e7a58918790811e419cc3031054fc726f37ddda2be2f7e5ccb363ca67ba67311eed94ff3933ba74e90bb6bb6e59a719185f1e3d246d06dcfb4286208495f63621aa6eeda96434cd3b43dca4598faa67b19b96d6fe54feea04ab3351f292b57f9e842c2e5cf56a11fe4c74ba91ccfa22248b3e429642091e138ca61e5a3527c80f3e0af3c8983bcc89633b5ea14e64106ffccc2ac9456643329aca915a48c41837bc38a094ee1ca268e453c8b71cb362ddf603ad31db18c58aee15b8c22440972458e32a52f2fcfae34a47f47f02d5a560adb344ce6b0e7871782fd64a9f7fdedfbb777a3b6c2f1c526e952eac0d7d07c0dcdd38466599b2bc7e6d17b8a63c4e6176e025e63f335364f139b555fa61c9c476f288f119c5fb8c9780dced7e03c4d70d66d9f72741ebd613d4674729383cb38a3ae8e0d647bd8e73e7854a40f0feb86496c4f771d42edd7e8fcda39fc7f169df2fb33e5d0548e82738466e9115d67987b360197306c73443de2db261545b6a37bc8f090c81aa217f62f2a2e6bbff43979f0f9b9e58ba44afc2c036d927cd2f202d25cc3e20afe053a2b80699fc26212c61ad6b2597c35d8224443af8611d5736157207bb605b68774c3771c4a4cdb11699831d7b2c0343cc229b111360ceced4df7230111258f8f90e51a4cc3429b429ee347c877c5a216d28e04f8c861c801c17e1d383788efdbd473b96d6313134ff711d7a98dc86991b81f4c208a927b49e6e77e5884cd453805ad0c1d28243a3cc9b4441046fc12ca41912b8022c6776442c9000c9c9a08db222d9a96697a9667588e29029223464c1f9b889f1a903009a63816fece545029a3662222866919e4c92ca3500550384d239842bc470c2d04b5032548a38b45c1d1b965e936d2b1e97a86ad9b0e668c885e43b7888e10b82f27e1ddf29d6a06befb78f3f62e18ff72fdfbfb03b2b02f1c6fbbae4510b389cf096706253e588eefb916324ce4887f2dfed565e1fbc1cdf0c3e87ed0c2aabb09d489e7bb5c2b2682069324626a892688e009a2ae42f98411733f60f851ac1b59a749524b2de1da5c90bab64fc1a6f2f79e75ff6e0c3a2faf39f89663319738b68929e5982102943091fa0832b96b232004e1af8ed722732e68281367c3f3efc5ffa497aa7b0baeb4655549967a0e8d265122932a4de23c89409d37d52b65ed995399128a0c53f5e55919a6bc8e7e750c6be14c6b93b24989b2c439b41e55628432f6e765846a8f79498c386d478e8bc9418b8b32a46775b4329bbf5d47ab2d074a5b14bb417a56472bb70097e4e8bd5bf337b3302a7e100dd4cd48ab5b33511ee342cb0b512388762b96cd97085f517be45aa5b526864f619a6473859a61d9f29d659550f6de5939a5bc2171499c3a79f290c5674731a95afda9914219fe7391a25a0ecff66afaf255bef5f558d5dc3d5f5097300d7fee7b47fd597e56f72d413946aa9ca79842cfa99777d50352bf61337cf3f4cb9a50b533302b627b638d85791ae1f9e609174177229369182ff3b1c2a9979559d78ebd44096642fffa08d0215bfb532ce487380affbb29af3668c3909697411fba4fd6ec8b5af3f27c0f6cbda76936715b21693b74473950a08c65a37b17981d4774f64573f1aa7b0f9cfdc7720ec1f3801300ca802eb4ef42b4f5b0cfbe78d66fa7f7a0d977c0e7102cf77e5d5f19c95af32e1c8789dc506f599df6c5b211d88fe7ca28254c87a3bb5f9ad5a50dd45a19655456e6ef42a66bd9de1798e52adc83cb0b4bf521543be4ec8132ae4bfd5b61ad2a0048653d39a3c52ceb5df8218598414ce7e366f4eaba2feac9900561fc94502c91af24b5d4bf6339f06631ae715a18a7b3222895691e7ca89cc3e6c29c908a4e264dd7aad96a4a5121075b1b62d547dbfb64c26183f2bbaf87e72ea23c66389dac494d33780a93591e3c41964bd3fe4aca6a551e1c16bdd52a660df11306a5882e107e1303de01ef656cb533dc2be6b61cb222a83e775c56a4e5535d75eeebcef8e6cef8deca6d3655655bd4dcac9f97e39a6f3f7b3dfab11e740a9f7eb10da993ec7cb4ec7194c867495234e7eff7fb3e78cd815dc1bf483e611c4aabf29ed459a6bc77cba1eb7f6d609a2679588834b248676b19b0e57687f86f98308dc07a91d880682bcf27b3626be00602a372c86a0e5e6d5ab7d6ff2efbeac569c5bcdefd79c16d990d2aa2d6a382456258acccdb4b557329d67e10c0273f1610e3b2e85ea498e7e7ff01f4bedd29	PIPELINE
2	8730578ca6e7f2430e21999f5a525543132349d5	\\x789cad53cb6edb3010fc9540e7a2b00bab717a2d0204088218507b328c052dae62c214c992abb48aa17fef92a2e5479b9e7ae4ceec701fb38702a0d6220480e2cb4d71ff0beb8e94352b2d4c65840b3b4bc5879b4278528da82980431f542094cc27df218398b2ac07235ae4b0e9b4e6b0328a94d0b037f6a78140822278b8fcf13182d3b7552271aeec594bd5d00ae79479093171e0b8131e0d4d62f927e7f155d92e8047f23d08226c1d4d491e85ecc176e4ba31c82534debea10948a98cf526f2b82b9769f01adbb4264ca0530eb53208218f05541c41b15c96b7f5a2bc2d67cbed4c2c67cd1d2296b229512ecabbed67b9fd349fe3a28c5d4da9599df3e7c77ff7d807200be3306373eb62875adb629329a996c33b0bab98101756a4c1e746d73195852373d48a6f65641e029aae1d7562fa23031fbf3e3fadbe7fbb2f62cb2d92908204289ee7a4779ae33f8b794eb4634952bc700b1ea87708b9a28a3caf36a2d937bca8d0e9e437e72d1b8d14863f2d73525f9d58d1a321aeb3de61bdcf5f647b8c001eab4b455ca317092a408a72a4113ae059085c3c8528932ee00cce96bd0c7afcd1297f7e2cbcff4e4b36368f83af43bde1312359d06a2561278cd47f39962aa20f237836b669b5e375e43e86617325981d3bd193efdefd8bc1d357d726faaf75728444bef16133fc0607e48ff6	EXECUTION_PLAN
\.


--
-- Name: asset_check_executions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.asset_check_executions_id_seq', 1, false);


--
-- Name: asset_daemon_asset_evaluations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.asset_daemon_asset_evaluations_id_seq', 1, false);


--
-- Name: asset_event_tags_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.asset_event_tags_id_seq', 1, false);


--
-- Name: asset_keys_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.asset_keys_id_seq', 1, false);


--
-- Name: backfill_tags_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.backfill_tags_id_seq', 1, false);


--
-- Name: bulk_actions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.bulk_actions_id_seq', 1, false);


--
-- Name: concurrency_limits_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.concurrency_limits_id_seq', 1, false);


--
-- Name: concurrency_slots_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.concurrency_slots_id_seq', 1, false);


--
-- Name: daemon_heartbeats_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.daemon_heartbeats_id_seq', 1, false);


--
-- Name: dynamic_partitions_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.dynamic_partitions_id_seq', 1, false);


--
-- Name: event_logs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.event_logs_id_seq', 11, true);


--
-- Name: instance_info_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.instance_info_id_seq', 1, false);


--
-- Name: instigators_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.instigators_id_seq', 1, false);


--
-- Name: job_ticks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.job_ticks_id_seq', 1, false);


--
-- Name: jobs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_id_seq', 1, false);


--
-- Name: kvs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.kvs_id_seq', 1, false);


--
-- Name: pending_steps_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.pending_steps_id_seq', 1, false);


--
-- Name: run_tags_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.run_tags_id_seq', 1, true);


--
-- Name: runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.runs_id_seq', 1, true);


--
-- Name: secondary_indexes_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.secondary_indexes_id_seq', 11, true);


--
-- Name: snapshots_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.snapshots_id_seq', 2, true);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: asset_check_executions asset_check_executions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_check_executions
    ADD CONSTRAINT asset_check_executions_pkey PRIMARY KEY (id);


--
-- Name: asset_daemon_asset_evaluations asset_daemon_asset_evaluations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_daemon_asset_evaluations
    ADD CONSTRAINT asset_daemon_asset_evaluations_pkey PRIMARY KEY (id);


--
-- Name: asset_event_tags asset_event_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_event_tags
    ADD CONSTRAINT asset_event_tags_pkey PRIMARY KEY (id);


--
-- Name: asset_keys asset_keys_asset_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_keys
    ADD CONSTRAINT asset_keys_asset_key_key UNIQUE (asset_key);


--
-- Name: asset_keys asset_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.asset_keys
    ADD CONSTRAINT asset_keys_pkey PRIMARY KEY (id);


--
-- Name: backfill_tags backfill_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.backfill_tags
    ADD CONSTRAINT backfill_tags_pkey PRIMARY KEY (id);


--
-- Name: bulk_actions bulk_actions_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bulk_actions
    ADD CONSTRAINT bulk_actions_key_key UNIQUE (key);


--
-- Name: bulk_actions bulk_actions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bulk_actions
    ADD CONSTRAINT bulk_actions_pkey PRIMARY KEY (id);


--
-- Name: concurrency_limits concurrency_limits_concurrency_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.concurrency_limits
    ADD CONSTRAINT concurrency_limits_concurrency_key_key UNIQUE (concurrency_key);


--
-- Name: concurrency_limits concurrency_limits_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.concurrency_limits
    ADD CONSTRAINT concurrency_limits_pkey PRIMARY KEY (id);


--
-- Name: concurrency_slots concurrency_slots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.concurrency_slots
    ADD CONSTRAINT concurrency_slots_pkey PRIMARY KEY (id);


--
-- Name: daemon_heartbeats daemon_heartbeats_daemon_type_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daemon_heartbeats
    ADD CONSTRAINT daemon_heartbeats_daemon_type_key UNIQUE (daemon_type);


--
-- Name: daemon_heartbeats daemon_heartbeats_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.daemon_heartbeats
    ADD CONSTRAINT daemon_heartbeats_pkey PRIMARY KEY (id);


--
-- Name: dynamic_partitions dynamic_partitions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.dynamic_partitions
    ADD CONSTRAINT dynamic_partitions_pkey PRIMARY KEY (id);


--
-- Name: event_logs event_logs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.event_logs
    ADD CONSTRAINT event_logs_pkey PRIMARY KEY (id);


--
-- Name: instance_info instance_info_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instance_info
    ADD CONSTRAINT instance_info_pkey PRIMARY KEY (id);


--
-- Name: instigators instigators_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instigators
    ADD CONSTRAINT instigators_pkey PRIMARY KEY (id);


--
-- Name: instigators instigators_selector_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.instigators
    ADD CONSTRAINT instigators_selector_id_key UNIQUE (selector_id);


--
-- Name: job_ticks job_ticks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.job_ticks
    ADD CONSTRAINT job_ticks_pkey PRIMARY KEY (id);


--
-- Name: jobs jobs_job_origin_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_job_origin_id_key UNIQUE (job_origin_id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: kvs kvs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.kvs
    ADD CONSTRAINT kvs_pkey PRIMARY KEY (id);


--
-- Name: pending_steps pending_steps_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pending_steps
    ADD CONSTRAINT pending_steps_pkey PRIMARY KEY (id);


--
-- Name: run_tags run_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_tags
    ADD CONSTRAINT run_tags_pkey PRIMARY KEY (id);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: runs runs_run_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_run_id_key UNIQUE (run_id);


--
-- Name: secondary_indexes secondary_indexes_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secondary_indexes
    ADD CONSTRAINT secondary_indexes_name_key UNIQUE (name);


--
-- Name: secondary_indexes secondary_indexes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secondary_indexes
    ADD CONSTRAINT secondary_indexes_pkey PRIMARY KEY (id);


--
-- Name: snapshots snapshots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT snapshots_pkey PRIMARY KEY (id);


--
-- Name: snapshots snapshots_snapshot_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.snapshots
    ADD CONSTRAINT snapshots_snapshot_id_key UNIQUE (snapshot_id);


--
-- Name: idx_asset_check_executions; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_check_executions ON public.asset_check_executions USING btree (asset_key, check_name, materialization_event_storage_id, partition);


--
-- Name: idx_asset_check_executions_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_check_executions_unique ON public.asset_check_executions USING btree (asset_key, check_name, run_id, partition);


--
-- Name: idx_asset_daemon_asset_evaluations_asset_key_evaluation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_asset_daemon_asset_evaluations_asset_key_evaluation_id ON public.asset_daemon_asset_evaluations USING btree (asset_key, evaluation_id);


--
-- Name: idx_asset_event_tags; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_event_tags ON public.asset_event_tags USING btree (asset_key, key, value);


--
-- Name: idx_asset_event_tags_event_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_asset_event_tags_event_id ON public.asset_event_tags USING btree (event_id);


--
-- Name: idx_backfill_tags_backfill_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_backfill_tags_backfill_id ON public.backfill_tags USING btree (backfill_id, id);


--
-- Name: idx_bulk_actions; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_bulk_actions ON public.bulk_actions USING btree (key);


--
-- Name: idx_bulk_actions_action_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_bulk_actions_action_type ON public.bulk_actions USING btree (action_type);


--
-- Name: idx_bulk_actions_selector_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_bulk_actions_selector_id ON public.bulk_actions USING btree (selector_id);


--
-- Name: idx_bulk_actions_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_bulk_actions_status ON public.bulk_actions USING btree (status);


--
-- Name: idx_dynamic_partitions; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_dynamic_partitions ON public.dynamic_partitions USING btree (partitions_def_name, partition);


--
-- Name: idx_event_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_event_type ON public.event_logs USING btree (dagster_event_type, id);


--
-- Name: idx_events_by_asset; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_events_by_asset ON public.event_logs USING btree (asset_key, dagster_event_type, id) WHERE (asset_key IS NOT NULL);


--
-- Name: idx_events_by_asset_partition; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_events_by_asset_partition ON public.event_logs USING btree (asset_key, dagster_event_type, partition, id) WHERE ((asset_key IS NOT NULL) AND (partition IS NOT NULL));


--
-- Name: idx_events_by_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_events_by_run_id ON public.event_logs USING btree (run_id, id);


--
-- Name: idx_job_tick_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_job_tick_status ON public.job_ticks USING btree (job_origin_id, status);


--
-- Name: idx_job_tick_timestamp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_job_tick_timestamp ON public.job_ticks USING btree (job_origin_id, "timestamp");


--
-- Name: idx_kvs_keys_unique; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_kvs_keys_unique ON public.kvs USING btree (key);


--
-- Name: idx_pending_steps; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX idx_pending_steps ON public.pending_steps USING btree (concurrency_key, run_id, step_key);


--
-- Name: idx_run_partitions; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_run_partitions ON public.runs USING btree (partition_set, partition);


--
-- Name: idx_run_range; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_run_range ON public.runs USING btree (status, update_timestamp, create_timestamp);


--
-- Name: idx_run_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_run_status ON public.runs USING btree (status);


--
-- Name: idx_run_tags; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_run_tags ON public.run_tags USING btree (key, value);


--
-- Name: idx_run_tags_run_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_run_tags_run_idx ON public.run_tags USING btree (run_id, id);


--
-- Name: idx_runs_by_backfill_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_runs_by_backfill_id ON public.runs USING btree (backfill_id, id);


--
-- Name: idx_runs_by_job; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_runs_by_job ON public.runs USING btree (pipeline_name, id);


--
-- Name: idx_step_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_step_key ON public.event_logs USING btree (step_key);


--
-- Name: idx_tick_selector_timestamp; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_tick_selector_timestamp ON public.job_ticks USING btree (selector_id, "timestamp");


--
-- Name: ix_asset_daemon_asset_evaluations_evaluation_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_asset_daemon_asset_evaluations_evaluation_id ON public.asset_daemon_asset_evaluations USING btree (evaluation_id);


--
-- Name: ix_instigators_instigator_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_instigators_instigator_type ON public.instigators USING btree (instigator_type);


--
-- Name: ix_job_ticks_job_origin_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_job_ticks_job_origin_id ON public.job_ticks USING btree (job_origin_id);


--
-- Name: ix_jobs_job_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_job_type ON public.jobs USING btree (job_type);


--
-- Name: runs fk_runs_snapshot_id_snapshots_snapshot_id; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT fk_runs_snapshot_id_snapshots_snapshot_id FOREIGN KEY (snapshot_id) REFERENCES public.snapshots(snapshot_id);


--
-- Name: run_tags run_tags_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_tags
    ADD CONSTRAINT run_tags_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(run_id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--

\unrestrict qDX78jgjuEkFV80U9XoIdi2noexMEgxai3pGko25RHn3KGPEtNmrqQhzBRhrzao

