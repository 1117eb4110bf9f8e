# Runs the stock AWS CodeDeploy agent in the foreground, unchanged: the setup
# lib/codedeploy-agent.rb does before `start`, without daemonizing.
# Usage: ruby stock_agent_launcher.rb AGENT_DIR CONFIG_FILE
agent_dir, config_file = ARGV
$LOAD_PATH.unshift File.join(agent_dir, 'lib')
require 'instance_agent'
InstanceAgent::Config.config(:config_file => config_file)
InstanceAgent::Platform.util = InstanceAgent::LinuxUtil
InstanceAgent::Config.load_config
InstanceAgent::Runner::Master.new.start
