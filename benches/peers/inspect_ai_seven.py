# The peer anchor for `veyra bench --family all --count 1000`: seven tasks of 1,000 samples each
# on inspect_ai's mockllm, scored by match(). Run it as (README, Performance):
#   pip install inspect_ai
#   /usr/bin/time inspect eval benches/peers/inspect_ai_seven.py --model mockllm/model \
#       --display none --log-dir "$(mktemp -d)"
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import match
from inspect_ai.solver import generate

def make(name):
    samples = [Sample(input=f"{name} question {i}: what is {i} + {i}?", target=str(2 * i)) for i in range(1000)]
    return Task(dataset=samples, solver=[generate()], scorer=match(), name=name)

@task
def cplc(): return make("cplc")
@task
def msga(): return make("msga")
@task
def wmrt(): return make("wmrt")
@task
def icsd(): return make("icsd")
@task
def tome(): return make("tome")
@task
def asr(): return make("asr")
@task
def imdp(): return make("imdp")
