"""Raw Argo jobs: event data never reaches a script's source or a container's command line.

Before issue 18, ``arguments: {branch: '${{ event.branch }}'}`` with a script
``source: echo {{inputs.parameters.branch}}`` ran a branch named ``$(touch${IFS}pwned)`` as
code. Such job files are now a ``forgeflow/config`` failure at the line of the script, saying
how to pass the value as an environment variable instead.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from service.jobs.event_data import carries_event_data, leaks
from service.jobs.loader import JobFileError, load_job_file


def job_file(templates: str, arguments: str = '{branch: "${{ event.branch }}"}', entry: str = "main") -> str:
    head = f"version: 1\njobs:\n  smoke:\n    arguments: {arguments}\n"
    head += f"    argo:\n      entrypoint: {entry}\n      templates:\n"
    return head + textwrap.indent(textwrap.dedent(templates), " " * 8)


def problems(text: str) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job_file(text)
    return [str(p) for p in caught.value.problems]


def accepted(text: str) -> None:
    load_job_file(text)


SCRIPT = """\
- name: main
  inputs: {parameters: [{name: branch}]}
  script:
    image: alpine:3
    command: [sh]
    source: |
      echo {{inputs.parameters.branch}}
"""


def test_the_reported_injection_is_refused_at_the_scripts_line_with_the_way_out():
    [problem] = problems(job_file(SCRIPT))
    assert problem.startswith(".forgeflow.yaml:13:")  # the line of "source:"
    assert "jobs.smoke.argo.templates[0].script.source" in problem
    assert "{{inputs.parameters.branch}} carries event data" in problem
    assert "'${{ event.branch }}'" in problem
    assert 'env: [{name: BRANCH, value: "{{inputs.parameters.branch}}"}]' in problem
    assert 'use "$BRANCH"' in problem


def test_the_same_value_as_an_environment_variable_is_accepted():
    accepted(
        job_file(
            """\
            - name: main
              inputs: {parameters: [{name: branch}]}
              script:
                image: alpine:3
                command: [sh]
                env: [{name: BRANCH, value: "{{inputs.parameters.branch}}"}]
                source: echo "$BRANCH"
            """
        )
    )


@pytest.mark.parametrize(
    "container",
    [
        'command: [sh, -c, "echo {{inputs.parameters.branch}}"]',
        'command: [git, checkout, "{{inputs.parameters.branch}}"]',
        'args: ["--ref={{inputs.parameters.branch}}"]',
        'args: ["{{ inputs.parameters.branch }}"]',
        "args: [\"{{=inputs.parameters['branch']}}\"]",
        'args: ["{{=sprig.upper(inputs.parameters.branch)}}"]',
        'args: ["{{inputs.parameters}}"]',
        'args: ["{{workflow.annotations.forgeflow.dev/event}}"]',
    ],
)
def test_command_and_args_are_refused_too(container):
    text = job_file(
        f"""\
        - name: main
          inputs: {{parameters: [{{name: branch}}]}}
          container: {{image: "alpine:3", {container}}}
        """
    )
    [problem] = problems(text)
    assert "carries event data" in problem and "env:" in problem


@pytest.mark.parametrize(
    "arguments",
    ['{branch: "main"}', '{branch: "${{ matrix.branch }}"}'],
)
def test_values_from_the_job_file_itself_may_be_spliced(arguments):
    text = job_file(SCRIPT, arguments)
    if "matrix" in arguments:
        text = text.replace("    arguments:", "    matrix: {branch: [a, b]}\n    arguments:")
    accepted(text)


def test_event_data_is_followed_through_dag_tasks_and_steps():
    text = job_file(
        """\
        - name: main
          inputs: {parameters: [{name: branch}]}
          dag:
            tasks:
              - name: a
                template: middle
                arguments: {parameters: [{name: ref, value: "refs/heads/{{inputs.parameters.branch}}"}]}
        - name: middle
          inputs: {parameters: [{name: ref}]}
          steps:
            - - name: b
                template: leaf
                arguments:
                  parameters: [{name: x, value: "{{inputs.parameters.ref}}"}, {name: y, value: fixed}]
        - name: leaf
          inputs: {parameters: [{name: x}, {name: y}]}
          script:
            image: "alpine:3"
            command: [sh]
            source: "echo {{inputs.parameters.y}} {{inputs.parameters.x}}"
        """
    )
    [problem] = problems(text)
    assert "templates[2].script.source" in problem and "{{inputs.parameters.x}}" in problem


def test_event_data_is_followed_into_inline_templates_loops_and_outputs():
    loop = job_file(
        """\
        - name: main
          inputs: {parameters: [{name: branch}]}
          steps:
            - - name: each
                template: say
                withParam: "{{inputs.parameters.branch}}"
                arguments: {parameters: [{name: what, value: "{{item}}"}]}
        - name: say
          inputs: {parameters: [{name: what}]}
          container: {image: "alpine:3", args: ["{{inputs.parameters.what}}"]}
        """
    )
    assert "templates[1].container.args[0]" in problems(loop)[0]
    inline = job_file(
        """\
        - name: main
          inputs: {parameters: [{name: branch}]}
          dag:
            tasks:
              - name: a
                arguments: {parameters: [{name: b, value: "{{inputs.parameters.branch}}"}]}
                inline:
                  inputs: {parameters: [{name: b}]}
                  script: {image: "alpine:3", command: [sh], source: "echo {{inputs.parameters.b}}"}
        """
    )
    assert "templates[0].dag.tasks[0].inline.script.source" in problems(inline)[0]
    outputs = job_file(
        """\
        - name: main
          inputs: {parameters: [{name: branch}]}
          steps:
            - - name: read
                template: echo
                arguments: {parameters: [{name: v, value: "{{inputs.parameters.branch}}"}]}
            - - name: use
                template: run
                arguments: {parameters: [{name: w, value: "{{steps.read.outputs.result}}"}]}
        - name: echo
          inputs: {parameters: [{name: v}]}
          script:
            image: "alpine:3"
            command: [sh]
            env: [{name: V, value: "{{inputs.parameters.v}}"}]
            source: 'echo "$V"'
        - name: run
          inputs: {parameters: [{name: w}]}
          script: {image: "alpine:3", command: [sh], source: "{{inputs.parameters.w}}"}
        """
    )
    assert "templates[2].script.source" in problems(outputs)[0]


def test_sidecars_init_containers_and_container_sets_are_checked():
    text = job_file(
        """\
        - name: main
          inputs: {parameters: [{name: branch}]}
          initContainers:
            - {name: init, image: "alpine:3", command: [sh, -c, "echo {{inputs.parameters.branch}}"]}
          containerSet:
            containers:
              - {name: one, image: "alpine:3", args: ["{{inputs.parameters.branch}}"]}
        """
    )
    found = "\n".join(problems(text))
    assert "initContainers[0].command[2]" in found and "containerSet.containers[0].args[0]" in found


def test_pure_check_finds_nothing_without_event_data():
    templates = [{"name": "main", "script": {"image": "a", "source": "echo {{inputs.parameters.x}}"}}]
    assert leaks(templates, "main", {"x": "literal"}) == []
    found = leaks(templates, "main", {"x": "${{ event.sha }}"})
    assert [leak.path for leak in found] == [(0, "script", "source")]
    assert carries_event_data("${{ event.pull_request.title }}")
    assert carries_event_data("v-${{ event.tag }}")
    assert not carries_event_data("${{ matrix.python }}") and not carries_event_data("plain")


def test_a_branch_named_as_a_command_runs_nothing(tmp_path: Path, git_repo, monkeypatch, capsys):
    """The issue's reproduction through ``forgeflow exec``: a config error, no file created."""
    from service.cli.main import main
    from tests.support import payloads

    sha = git_repo.commit({".forgeflow.yaml": job_file(SCRIPT.replace("echo {{", "cd {{"))})
    event = tmp_path / "push.json"
    branch = "$(touch${IFS}pwned)"
    event.write_text(json.dumps(payloads.push("octo/hello", git_repo.url, sha, ref=f"refs/heads/{branch}")))
    monkeypatch.setenv("FORGEFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["exec", "--event", str(event), "--repo", str(git_repo.work)]) == 1
    assert "carries event data" in capsys.readouterr().err
    assert not list(tmp_path.rglob("pwned"))
