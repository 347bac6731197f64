"""The names under which a session keeps its work in st.session_state: one list, so no page spells one twice."""

DATA = "active_data"
MODEL = "active_model"
NORMALS = "normal_labels"
THRESHOLD = "threshold"
THRESHOLD_REVISION = "threshold_revision"  # bumped whenever the threshold is set other than by the chart's slider
JOB = "train_job"
JOB_ADOPTED = "job_adopted"  # the finished job's model has been activated (once, by whichever tab saw it first)
THRESHOLD_SLOT = "_sidebar_threshold_slot"
NOTICE = "notice"  # one-shot message shown on the next run (e.g. "model trained and activated")
PRIMARY = "primary_model"  # the last model loaded or trained (not a baseline): what "switch detector" returns to
BASELINES = "baselines"  # (key, [ActiveModel]) fitted on the active data, normal labels and split
WORKSPACE = "workspace"  # this session's server-side workspace (see ecgviz/dashboard/workspace.py)
WS_SEEN = "workspace_revision"  # the workspace revision this session last read or wrote
WS_PARAM = "ws"  # the URL query parameter that names the workspace
# widgets whose values follow the shared state: dropped so they are drawn again from it
THRESHOLD_BOX = "thr_number"
NORMALS_WIDGET = "normals_widget"
