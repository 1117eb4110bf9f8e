"""PreTraffic hook: invoke the version about to receive traffic and report the verdict.

CodeDeploy passes the deployment and the hook execution ids; the version under test is
read from the deployment's Lambda target, invoked directly, and must answer
{"status": "ok"}.
"""

import json

import boto3


def handler(event, context):
    codedeploy = boto3.client("codedeploy")
    lam = boto3.client("lambda")
    deployment_id = event["DeploymentId"]
    (target_id,) = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=target_id)
    info = target["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"]
    answer = lam.invoke(
        FunctionName=info["functionName"], Qualifier=info["targetVersion"], Payload=b"{}"
    )
    verdict = json.loads(answer["Payload"].read())
    status = "Succeeded" if verdict.get("status") == "ok" else "Failed"
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=deployment_id,
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return {"checked": info["targetVersion"], "status": status}
