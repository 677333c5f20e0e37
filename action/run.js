// Runs one of the action's shell scripts with the action's inputs as plain environment variables
// (the runner passes them as INPUT_<NAME>, with hyphens a shell cannot read) and fails the step
// with the script's status. No dependencies: what the runner's Node has is enough.
const { spawnSync } = require("child_process");
const path = require("path");

function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
}

module.exports = function run(script) {
  const env = {
    ...process.env,
    SIGSTACK_ACTION_REGISTRY: input("registry") || "true",
    SIGSTACK_ACTION_STATE_DIR: input("state-dir"),
    SIGSTACK_ACTION_REPOSITORY: input("repository"),
    SIGSTACK_ACTION_WORKFLOW: input("workflow"),
    SIGSTACK_ACTION_REF: input("ref"),
    SIGSTACK_ACTION_BINARY: input("binary"),
    SIGSTACK_ACTION_EXPORT_CLIENT_ENV: input("export-client-env") || "false",
  };
  const result = spawnSync("bash", [path.join(__dirname, script)], { stdio: "inherit", env });
  if (result.error) {
    console.log(`::error::cannot run ${script}: ${result.error.message}`);
    process.exit(1);
  }
  process.exit(result.status === null ? 1 : result.status);
};
