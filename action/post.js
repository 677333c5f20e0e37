// The action's post step: stop the stack (action/stop.sh).
require("./run")("stop.sh");
