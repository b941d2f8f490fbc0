use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::module::Param;
use rxalign_core::{Action, DrugSet, seeded_rng};

use super::*;
use rxalign_policy::family::{ActMemo, ActMode, Effect, PolicyFamily, State};
use rxalign_policy::test_support::tiny;

fn family(prompts: PromptStyle, lora: Option<LoraConfig>) -> LlamaPolicy {
    LlamaPolicyConfig {
        scratch: Some(ScratchModel {
            layers: 1,
            heads: 2,
            kv_heads: 1,
            head_dim: 8,
            intermediate: 16,
            vocab: 300,
        }),
        lora,
        prompts,
        max_lines: 3,
        max_line_tokens: 6,
        ..LlamaPolicyConfig::default()
    }
    .build(&tiny())
    .unwrap()
}

fn values(t: Tensor<Flex, 2>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

/// Walks the expert plan from `start`, returning each state's decision and
/// the final list.
fn walk(f: &LlamaPolicy, visit: usize, start: &DrugSet) -> (Vec<(DrugSet, Vec<Effect>, Line)>, DrugSet) {
    let cohort = tiny();
    let truth = cohort.visits[visit].drugs.clone();
    let mut list = start.clone();
    let mut earlier = Vec::new();
    let mut out = Vec::new();
    for action in f.expert_plan(start, &truth) {
        let line = f.expert(
            State {
                visit,
                list: &list,
                start,
                earlier: &earlier,
            },
            action,
            &cohort,
        );
        out.push((list.clone(), earlier.clone(), line.clone()));
        match line.effect {
            Effect::Act(Action::Add(d)) => {
                list.insert(d);
            }
            Effect::Act(Action::Remove(d)) => {
                list.remove(d);
            }
            _ => {}
        }
        earlier.push(line.effect);
    }
    (out, list)
}

#[test]
fn flame_expert_answers_add_the_misses_then_remove_the_extras() {
    let f = family(PromptStyle::AddRemove, None);
    // Visit 0's truth is {0, 2}; the start has 2 (kept), 4 and 5 (extras).
    let start = DrugSet::from_indices(6, [2, 4, 5]);
    let (steps, last) = walk(&f, 0, &start);
    let effects: Vec<Effect> = steps.iter().map(|s| s.2.effect.clone()).collect();
    assert_eq!(
        effects,
        [
            Effect::Act(Action::Add(0)),
            Effect::NextPrompt,
            Effect::Act(Action::Remove(4)),
            Effect::Act(Action::Remove(5)),
            Effect::Act(Action::Stop),
        ]
    );
    assert_eq!(last, tiny().visits[0].drugs);
    // An expert line is its drug's name and a newline; an end of answer is
    // the end-of-turn token alone.
    let text = f.tokenizer().decode(&steps[0].2.tokens).unwrap();
    assert_eq!(text, "d0\n");
    assert_eq!(steps[1].2.tokens, [f.eos()]);
    // The remove prompt's context shows the start list and the remove
    // answer so far, not the add answer.
    let cohort = tiny();
    let (list, earlier, _) = &steps[3];
    let ctx = f
        .context(
            &cohort,
            &State {
                visit: 0,
                list,
                start: &start,
                earlier,
            },
        )
        .unwrap();
    let text = f.tokenizer().decode(&ctx).unwrap();
    assert!(text.contains("removed"), "{text}");
    assert!(text.contains("Medication list:\nd2\nd4\nd5\n"), "{text}");
    assert!(text.ends_with("d4\n"), "{text}");
    assert!(!text.ends_with("d0\nd4\n"), "{text}");
}

#[test]
fn the_edit_style_writes_signed_lines_in_one_answer() {
    let f = family(PromptStyle::Edit, None);
    let start = DrugSet::from_indices(6, [2, 4]);
    let (steps, last) = walk(&f, 0, &start);
    let texts: Vec<String> = steps
        .iter()
        .map(|s| f.tokenizer().decode(&s.2.tokens).unwrap())
        .collect();
    assert_eq!(texts, ["+ d0\n", "- d4\n", ""]);
    assert_eq!(steps[2].2.effect, Effect::Act(Action::Stop));
    assert_eq!(last, tiny().visits[0].drugs);
}

#[test]
fn answers_are_cut_at_max_lines_and_the_end_is_forced() {
    let f = family(PromptStyle::AddRemove, None);
    // Visit 1's truth is {3, 4, 5}: three misses, max_lines is 3.
    let start = DrugSet::empty(6);
    let (steps, _) = walk(&f, 1, &start);
    assert_eq!(steps.len(), 3 + 1 + 1);
    assert!(steps[3].2.forced, "the fourth line of an answer is a forced end");
    assert_eq!(steps[3].2.effect, Effect::NextPrompt);
    assert!(!steps[4].2.forced);
}

#[test]
fn acting_and_scoring_agree_token_by_token() {
    let cohort = tiny();
    for prompts in [PromptStyle::AddRemove, PromptStyle::Edit] {
        let f = family(prompts, None);
        let model: Llama<Flex> = f.init(&mut seeded_rng(1, "m"), &FlexDevice).unwrap();
        let start = DrugSet::from_indices(6, [1]);
        let list = DrugSet::from_indices(6, [1, 3]);
        let earlier = [Effect::Act(Action::Add(3)), Effect::Refusal("d9 x".into())];
        let states: Vec<State<'_>> = (0..6)
            .map(|i| State {
                visit: i % 2,
                list: if i < 3 { &start } else { &list },
                start: &start,
                earlier: if i < 3 { &[] } else { &earlier },
            })
            .collect();
        for (mode, temperature) in [
            (ActMode::Greedy, 1.0),
            (ActMode::Sample { temperature: 1.5 }, 1.5),
        ] {
            let acted = f
                .act(
                    &model,
                    &cohort,
                    &states,
                    mode,
                    &mut seeded_rng(2, "a"),
                    &FlexDevice,
                )
                .unwrap();
            let decisions: Vec<Line> = acted.iter().map(|a| a.decision.clone()).collect();
            let scored = f
                .score(&model, &cohort, &states, &decisions, temperature, &FlexDevice)
                .unwrap();
            let [n, parts] = scored.logp.dims();
            assert_eq!(n, 6);
            let logp = values(scored.logp);
            let mask = values(scored.mask);
            for (i, a) in acted.iter().enumerate() {
                assert!(!a.parts.is_empty() && a.parts.len() <= 6);
                assert_eq!(a.decision.tokens.len(), a.parts.len());
                for k in 0..parts {
                    if k < a.parts.len() {
                        assert_eq!(mask[i * parts + k], 1.0);
                        assert!(
                            (logp[i * parts + k] - a.parts[k]).abs() < 1e-4,
                            "{prompts:?} {mode:?} row {i} token {k}: {} vs {}",
                            logp[i * parts + k],
                            a.parts[k]
                        );
                    } else {
                        assert_eq!(mask[i * parts + k], 0.0);
                    }
                }
                // A line ends at a newline, at the end of the answer as its
                // first token, or at max_line_tokens.
                let t = &a.decision.tokens;
                let ends = t == &[f.eos()]
                    || f.tokenizer().decode(&t[t.len() - 1..]).unwrap().contains('\n')
                    || t.len() == 6;
                assert!(ends, "{t:?}");
                assert!(!t[1..].contains(&f.eos()), "the end of answer only starts a line");
            }
        }
    }
}

#[test]
fn acting_with_the_memo_gives_the_lines_acting_without_it_gives() {
    let cohort = tiny();
    for prompts in [PromptStyle::AddRemove, PromptStyle::Edit] {
        let f = family(prompts, None);
        let model: Llama<Flex> = f.init(&mut seeded_rng(1, "m"), &FlexDevice).unwrap();
        let starts = [DrugSet::from_indices(6, [1]), DrugSet::from_indices(6, [0, 3])];
        // Four episodes (two visits, two starts) for up to six calls, by
        // sampling; the memo is kept across the calls.
        let mut memo = ActMemo::default();
        let mut lists: Vec<DrugSet> = (0..4).map(|i| starts[i % 2].clone()).collect();
        let mut earlier: Vec<Vec<Effect>> = vec![Vec::new(); 4];
        let mut reused = 0;
        for call in 0..6 {
            let states: Vec<State<'_>> = (0..4)
                .map(|i| State {
                    visit: i / 2,
                    list: &lists[i],
                    start: &starts[i % 2],
                    earlier: &earlier[i],
                })
                .collect();
            let mode = ActMode::Sample { temperature: 1.3 };
            let with = f
                .act_with_memo(
                    &model,
                    &cohort,
                    &states,
                    mode,
                    &mut seeded_rng(call, "a"),
                    &FlexDevice,
                    &mut memo,
                )
                .unwrap();
            let without = f
                .act(
                    &model,
                    &cohort,
                    &states,
                    mode,
                    &mut seeded_rng(call, "a"),
                    &FlexDevice,
                )
                .unwrap();
            for (w, o) in with.iter().zip(&without) {
                assert_eq!(w.decision, o.decision, "{prompts:?} call {call}");
                for (a, b) in w.parts.iter().zip(&o.parts) {
                    assert!((a - b).abs() < 1e-4, "{prompts:?} call {call}: {a} vs {b}");
                }
            }
            let kept = memo.take::<Kept<Flex>>().unwrap();
            reused += kept.rows.len();
            memo.put(kept);
            for (i, a) in with.into_iter().enumerate() {
                match &a.decision.effect {
                    Effect::Act(Action::Add(d)) => {
                        lists[i].insert(*d);
                    }
                    Effect::Act(Action::Remove(d)) => {
                        lists[i].remove(*d);
                    }
                    _ => {}
                }
                earlier[i].push(a.decision.effect);
            }
        }
        assert!(reused > 0);
    }
}

#[test]
fn a_sequence_that_begins_another_is_read_from_the_longer_row() {
    let seqs = vec![
        vec![1, 2, 3],
        vec![1, 2, 3, 4, 5],
        vec![9, 9],
        vec![1, 2],
        vec![1, 2, 3, 4],
        vec![1, 2, 7],
        vec![9, 9],
    ];
    let (row_of, hosts) = rows(&seqs);
    // [1, 2] begins both [1, 2, 3, 4, 5] and [1, 2, 7]: either row serves.
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    for (i, s) in seqs.iter().enumerate() {
        let host = &seqs[hosts[row_of[i]]];
        assert!(host.starts_with(s), "{s:?} read from {host:?}");
    }
    assert_eq!(row_of[0], row_of[1]);
    assert_eq!(row_of[0], row_of[4]);
    assert_eq!(row_of[2], row_of[6]);
    assert_ne!(row_of[5], row_of[1]);
}

#[test]
fn an_answer_scored_together_equals_its_lines_scored_alone() {
    let cohort = tiny();
    for prompts in [PromptStyle::AddRemove, PromptStyle::Edit] {
        let f = family(prompts, None);
        let model: Llama<Flex> = f.init(&mut seeded_rng(1, "m"), &FlexDevice).unwrap();
        let start = DrugSet::from_indices(6, [1, 4]);
        let (steps, _) = walk(&f, 1, &start);
        assert!(steps.len() >= 3, "a plan of several lines");
        let states: Vec<State<'_>> = steps
            .iter()
            .map(|(list, earlier, _)| State {
                visit: 1,
                list,
                start: &start,
                earlier,
            })
            .collect();
        let lines: Vec<Line> = steps.iter().map(|(_, _, l)| l.clone()).collect();
        let seqs: Vec<Vec<u32>> = states
            .iter()
            .zip(&lines)
            .map(|(s, l)| [f.context(&cohort, s).unwrap(), l.tokens.clone()].concat())
            .collect();
        assert!(rows(&seqs).1.len() < lines.len(), "the lines share rows");
        let together = f
            .score(&model, &cohort, &states, &lines, 1.0, &FlexDevice)
            .unwrap();
        let parts = together.logp.dims()[1];
        let together = values(together.logp);
        for (i, (state, line)) in states.iter().zip(&lines).enumerate() {
            let alone = f
                .score(
                    &model,
                    &cohort,
                    &[*state],
                    std::slice::from_ref(line),
                    1.0,
                    &FlexDevice,
                )
                .unwrap();
            let alone = values(alone.logp);
            for (k, a) in alone.iter().enumerate() {
                let t = together[i * parts + k];
                assert!((t - a).abs() < 1e-4, "{prompts:?} line {i} token {k}: {t} vs {a}");
            }
        }
    }
}

/// GRPO's KL reference is the model it starts from with that model's
/// adapter on (the SFT policy); the same weights with the adapters off are
/// the base model, which a trained adapter has left.
#[test]
fn the_reference_is_the_start_with_its_adapter_and_adapters_off_is_the_base() {
    let cohort = tiny();
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let with = family(PromptStyle::AddRemove, Some(lora));
    let without = family(PromptStyle::AddRemove, None);
    // The same base weights: the adapters are added after the redraw.
    let mut adapted: Llama<Flex> = with.init(&mut seeded_rng(5, "m"), &FlexDevice).unwrap();
    let base: Llama<Flex> = without.init(&mut seeded_rng(5, "m"), &FlexDevice).unwrap();
    // A trained adapter (as SFT leaves it): B away from 0.
    for layer in adapted.model.layers.iter_mut() {
        for proj in [
            &mut layer.self_attn.q_proj,
            &mut layer.self_attn.v_proj,
            &mut layer.mlp.down_proj,
        ] {
            if let Some(Some(pair)) = proj.adapters.first_mut() {
                let b = pair.b.val();
                pair.b = Param::from_tensor(b.ones_like() * 0.3);
            }
        }
    }
    let start = DrugSet::from_indices(6, [1, 2]);
    let states = [State::first(0, &start), State::first(1, &start)];
    let decisions: Vec<Line> = states
        .iter()
        .map(|s| with.expert(*s, Action::Add(3), &cohort))
        .collect();
    let logp = |family: &LlamaPolicy, model: &Llama<Flex>, adapter: Adapter| {
        values(
            family
                .score_with(model, &cohort, &states, &decisions, 1.0, adapter, &FlexDevice)
                .unwrap()
                .logp,
        )
    };
    let reference = values(
        with.score_reference(&adapted, &cohort, &states, &decisions, 1.0, &FlexDevice)
            .unwrap()
            .logp,
    );
    let on = logp(&with, &adapted, with.adapter());
    let off = logp(&with, &adapted, Adapter::Off);
    let plain = logp(&without, &base, Adapter::Off);
    assert_eq!(reference, on, "the reference is the start, adapter on");
    for (o, p) in off.iter().zip(&plain) {
        assert!(
            (o - p).abs() < 1e-5,
            "adapters off: {off:?} vs the base {plain:?}"
        );
    }
    assert!(
        on.iter().zip(&plain).any(|(a, b)| (a - b).abs() > 1e-3),
        "the adapter changes the policy"
    );
}

/// A scratch model's LoRA adapters come from the run's seeded generator,
/// like its weights (never from the backend's, shared by runs side by
/// side): the same seed, the same `A`; another seed, another.
#[test]
fn scratch_adapters_are_drawn_from_the_seeded_generator() {
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        targets: vec!["q_proj".into()],
    };
    let with = family(PromptStyle::AddRemove, Some(lora));
    let a = |seed: u64| -> Vec<f32> {
        let model: Llama<Flex> = with.init(&mut seeded_rng(seed, "m"), &FlexDevice).unwrap();
        let pair = model.model.layers[0].self_attn.q_proj.adapters[0]
            .as_ref()
            .unwrap();
        assert!(pair.b.val().abs().max().into_scalar() == 0.0, "B starts at zero");
        pair.a.val().into_data().to_vec().unwrap()
    };
    assert_eq!(a(5), a(5));
    assert_ne!(a(5), a(6));
}

#[test]
fn settings_are_checked() {
    let bad = LlamaPolicyConfig {
        lora: Some(LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec!["qkv".into()],
        }),
        ..LlamaPolicyConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("`qkv`"));
    let bad = LlamaPolicyConfig {
        max_lines: 0,
        ..LlamaPolicyConfig::default()
    };
    assert!(bad.validate().is_err());
    let text = "(prompts: \"edit\", max_lines: 4, scratch: (layers: 1), templates: (add: \"a.txt\"), lora: (rank: 2, alpha: 4.0, targets: [\"q_proj\"]))";
    let c: LlamaPolicyConfig = ron::from_str(text).unwrap();
    assert_eq!(c.prompts, PromptStyle::Edit);
    assert_eq!(c.templates.add.as_deref(), Some(std::path::Path::new("a.txt")));
    assert_eq!(c.lora.as_ref().map(|l| l.rank), Some(2));
    assert_eq!(c.budget(), 5);
    assert!(ron::from_str::<LlamaPolicyConfig>("(prompt: \"edit\")").is_err());
}

/// A GRPO group's rollouts answer one prompt: they read it once, and each
/// decision's scores and the adapters' gradients equal those of each
/// rollout scored alone (a sum of gradients: the loss is a sum).
#[test]
fn rollouts_of_one_prompt_read_it_once_with_the_same_scores_and_gradients() {
    type A = rxalign_policy::CpuTrainBackend;
    let cohort = tiny();
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let f = family(PromptStyle::AddRemove, Some(lora));
    let model: Llama<A> = f.init(&mut seeded_rng(5, "m"), &FlexDevice).unwrap();
    // Every matrix redrawn, LoRA's B included: the adapters act.
    let model = model.map(&mut Redraw {
        rng: &mut seeded_rng(6, "adapters"),
    });
    let start = DrugSet::from_indices(6, [1, 2]);
    let (one, other) = (State::first(1, &start), State::first(0, &start));
    // Three rollouts of one prompt, answering differently, and one of
    // another visit.
    let states = [one, one, one, other];
    let decisions = [
        f.expert(one, Action::Add(3), &cohort),
        f.expert(one, Action::Add(4), &cohort),
        f.line(&one, vec![f.eos], false).unwrap(),
        f.expert(other, Action::Add(3), &cohort),
    ];
    let seqs: Vec<Vec<u32>> = states
        .iter()
        .zip(&decisions)
        .map(|(s, d)| [f.context(&cohort, s).unwrap(), d.tokens.clone()].concat())
        .collect();
    let (row_of, hosts) = rows(&seqs);
    let prompt = f.prompt(&cohort, &one).unwrap().len();
    let prompts: Vec<usize> = (0..hosts.len())
        .map(|row| {
            if row == row_of[3] {
                f.prompt(&cohort, &other).unwrap().len()
            } else {
                prompt
            }
        })
        .collect();
    let (group_of, groups) = prompt_groups(&seqs, &hosts, &prompts);
    assert_eq!(groups.len(), 1, "one prompt read once: {groups:?}");
    assert_eq!(groups[0].1, prompt - 1);
    assert_eq!(group_of.iter().flatten().count(), 3);
    let weights = [0.7f32, -1.3, 0.4, 1.1];
    let run = |which: &[usize]| {
        let st: Vec<State<'_>> = which.iter().map(|&i| states[i]).collect();
        let ds: Vec<Line> = which.iter().map(|&i| decisions[i].clone()).collect();
        let scored = f
            .score_with(&model, &cohort, &st, &ds, 1.0, f.adapter(), &FlexDevice)
            .unwrap();
        let parts = scored.logp.dims()[1];
        let w: Vec<f32> = which.iter().map(|&i| weights[i]).collect();
        let w = Tensor::<A, 2>::from_data(TensorData::new(w, [which.len(), 1]), &FlexDevice);
        let grads = (scored.logp.clone() * w).sum().backward();
        let mut g: Vec<f32> = Vec::new();
        for (_, _, p) in model.projections() {
            for pair in p.adapters.iter().flatten() {
                for t in [pair.a.val(), pair.b.val()] {
                    g.extend(t.grad(&grads).unwrap().into_data().into_vec::<f32>().unwrap());
                }
            }
        }
        let logp: Vec<f32> = scored.logp.into_data().into_vec().unwrap();
        let rows: Vec<Vec<f32>> = (0..which.len())
            .map(|r| logp[r * parts..r * parts + ds[r].tokens.len()].to_vec())
            .collect();
        (rows, g)
    };
    let (together, grad_together) = run(&[0, 1, 2, 3]);
    let mut grad_alone = vec![0.0f32; grad_together.len()];
    for (i, scores) in together.iter().enumerate() {
        let (alone, g) = run(&[i]);
        for (k, (t, a)) in scores.iter().zip(&alone[0]).enumerate() {
            assert!(
                (t - a).abs() < 1e-4,
                "decision {i} token {k}: {t} together, {a} alone"
            );
        }
        for (s, x) in grad_alone.iter_mut().zip(g) {
            *s += x;
        }
    }
    let largest = grad_alone.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(largest > 0.0);
    let diff = grad_together
        .iter()
        .zip(&grad_alone)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff < 1e-4 * largest.max(1.0),
        "adapter gradients differ by {diff} (largest {largest})"
    );
}
