// The action's main step: start the stack (action/start.sh).
require("./run")("start.sh");
