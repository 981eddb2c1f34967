/* nasdet search: the NASNet architecture search (controller + PPO, REINFORCE or random search)
 * with children trained in-process on a CIFAR-format set; and --plot to compare runs. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/status.h"
#include "dist/dist.h"
#include "search/search.h"
#include "search/search_driver.h"

static const char *const usage =
    "nasdet search --data cifar:DIR --out RUN/ [--strategy ppo|reinforce|random] [--children K] [--resume]\n"
    "       [--child-epochs E | --child-steps S] [--child-N 2] [--child-F 8] [--child-batch 64]\n"
    "       [--child-train-subset n] [--batch 20] [--seed S] [--job-timeout SEC]\n"
    "   or: mpirun -np K nasdet search ... (MPI build: rank 0 runs the search, ranks 1..K-1 train children)\n"
    "   or: nasdet search --plot RUN1 [RUN2 ...] --out cmp.png\n"
    "   or: nasdet search --data cifar:DIR --rank G1,G2,... [--seeds 3] [child options]";
static const char *const description =
    "Search a NASNet cell pair (Normal, Reduction). A controller LSTM (100 units) samples batches\n"
    "of architectures; each child is the CIFAR skeleton (N cells per stack, F filters) built from\n"
    "the sampled cells and trained briefly (SGD momentum, cosine) on the first part of a\n"
    "CIFAR-format training set; its accuracy on the last --child-val training images is the\n"
    "reward; PPO (clip 0.2, 4 epochs per batch, Adam lr 0.00035, entropy weight 1e-5, EMA\n"
    "baseline 0.95) updates the controller after each batch. --strategy random samples every\n"
    "decision uniformly with the same budget.\n"
    "RUN/ receives children.jsonl (one line per child), checkpoint.safetensors (the whole search\n"
    "state), best.json, top.json, rewards.png, best_cells.png (.dot), timing.jsonl. A killed or\n"
    "stopped search (Ctrl-C finishes the current child) continues with --resume and the same\n"
    "options (--children may grow); the same seed gives the same architectures.\n"
    "--plot draws the rewards of up to 4 runs into one PNG and prints their summaries.\n"
    "--rank trains the given genotypes (built-in names or JSON files) as children, --seeds times\n"
    "each, and prints their rewards: a check that the child setting ranks architectures.\n"
    "Under mpirun (a `make MPI=1` build) with K > 1 processes, rank 0 runs the controller and the\n"
    "queue and ranks 1..K-1 train children, each in a forked process: a child that dies or runs\n"
    "past --job-timeout is re-queued (same seed) and the search goes on; the same seed gives the\n"
    "same children and rewards for any K.";

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) {
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C kills at once; --resume still works */
}

static void print_summary(const char *run) {
    srch_run_summary s;
    if (srch_summary_read(run, &s)) {
        printf("%-24s %s\n", run, nd_last_error());
        return;
    }
    printf("%-24s children %5lld  failed %3lld  best %.4f  top-5 mean %.4f  top-25 mean %.4f  mean %.4f  "
           "%.1f s/child\n",
           run, (long long)s.children, (long long)s.failed, s.best, s.top5_mean, s.top25_mean, s.mean,
           s.child_seconds_mean);
}

static int plot_runs(const char *command, const nd_args *args, const char *out) {
    if (!out) return cli_error(command, CLI_EXIT_USAGE, "--plot needs --out FILE.png\nusage: %s", usage);
    if (args->npositional < 1 || args->npositional > 4)
        return cli_error(command, CLI_EXIT_USAGE, "--plot takes 1 to 4 run folders, got %d\nusage: %s",
                         args->npositional, usage);
    if (srch_report_plot_runs(args->positional, args->npositional, out)) return cli_fail(command);
    for (int i = 0; i < args->npositional; i++) print_summary(args->positional[i]);
    printf("wrote %s\n", out);
    return CLI_EXIT_OK;
}

/* Train each genotype of the comma-separated `specs` as a child with seeds 1..seeds. */
static int rank_genotypes(const char *command, const char *specs, int64_t seeds, srch_cifar_child *child) {
    srch_child_trainer t = srch_cifar_child_trainer(child);
    char *list = strdup(specs), *save = NULL;
    if (!list) return cli_error(command, CLI_EXIT_FAIL, "out of memory");
    int code = CLI_EXIT_OK;
    printf("%-28s %6s %9s %9s %11s %8s\n", "genotype", "seed", "reward", "params", "macs", "seconds");
    for (char *spec = strtok_r(list, ",", &save); spec && code == CLI_EXIT_OK; spec = strtok_r(NULL, ",", &save)) {
        nas_genotype g;
        if (nas_genotype_from_spec(spec, &g)) {
            code = cli_fail(command);
            break;
        }
        double sum = 0, sum2 = 0;
        for (int64_t s = 1; s <= seeds; s++) {
            srch_result r;
            memset(&r, 0, sizeof r);
            double t0 = nd_time_now();
            int rc = t.train(t.user, &g, (uint64_t)s, &r);
            r.seconds = nd_time_now() - t0;
            if (rc || !r.ok) {
                r.reward = 0;
                printf("%-28s %6lld   failed: %s\n", spec, (long long)s, rc ? nd_last_error() : r.message);
            } else {
                printf("%-28s %6lld %9.4f %9lld %11lld %8.1f\n", spec, (long long)s, r.reward, (long long)r.params,
                       (long long)r.macs, r.seconds);
            }
            fflush(stdout);
            sum += r.reward;
            sum2 += r.reward * r.reward;
        }
        double mean = sum / (double)seeds, var = sum2 / (double)seeds - mean * mean;
        printf("%-28s %6s %9.4f +- %.4f (mean +- std over %lld seeds)\n", spec, "all", mean, var > 0 ? sqrt(var) : 0.0,
               (long long)seeds);
    }
    free(list);
    return code;
}

/* Render RUN/best_cells.png with `nasdet viz` (Graphviz); the .dot text is already there. */
static void draw_best(const char *run) {
    char *g = nd_path_join(run, "best.json"), *png = nd_path_join(run, "best_cells.png");
    if (g && png && nd_path_exists(g)) {
        char *argv[] = {"viz", "--genotype", g, "--out", png, NULL};
        fflush(stdout);
        if (cli_cmd_viz(5, argv) != CLI_EXIT_OK)
            fprintf(stderr, "nasdet search: warning: best_cells.png not drawn; best_cells.dot holds the picture\n");
    }
    free(g);
    free(png);
}

/* Run the search with in-process workers (trainer) or, on MPI rank 0, the other ranks (mc). */
static int search_run(const char *command, srch_driver_config *dc, const dist_search_config *mc,
                      const srch_child_trainer *trainer, const char *out, int64_t children, double load_seconds,
                      int resume) {
    srch_workers *workers;
    if (mc ? dist_search_workers_new(mc, &workers) : srch_workers_local_new(trainer, &workers))
        return cli_fail(command);
    if (mc) printf("search over MPI: rank 0 runs the controller, %d worker ranks train children\n", dist_size() - 1);
    nd_progress prog;
    nd_progress_init(&prog, stderr, "search", "children", children);
    dc->progress = &prog;
    dc->stop = &stop_flag;
    void (*old_int)(int) = signal(SIGINT, on_signal);
    void (*old_term)(int) = signal(SIGTERM, on_signal);
    srch_run_stats st;
    int rc = srch_driver_run(dc, workers, resume, &st);
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
    srch_workers_free(workers);
    if (rc && rc != ND_ERR_INTERRUPTED) return cli_fail(command);
    if (st.children_done > 0) draw_best(out);
    double frac = st.wall_seconds > 0 ? st.overhead_seconds / st.wall_seconds : 0;
    printf("%s search, %s: %lld/%lld children (%lld this call, %lld failed)\n", srch_strategy_name(dc->strategy), out,
           (long long)st.children_done, (long long)children, (long long)st.children_this_call, (long long)st.failed);
    printf("time this call: %.1f s (data load %.1f s, not counted), %.1f s in child training, %.2f s outside it "
           "(%.2f%%: controller %.2f s, logs/reports/checkpoints %.2f s); %.1f children/hour\n",
           st.wall_seconds, load_seconds, st.child_seconds, st.overhead_seconds, 100 * frac, st.controller_seconds,
           st.report_seconds, st.wall_seconds > 0 ? 3600.0 * (double)st.children_this_call / st.wall_seconds : 0.0);
    if (st.children_done > 0) print_summary(out);
    if (rc == ND_ERR_INTERRUPTED) {
        printf("stopped: continue with the same command and --resume\n");
        return stop_flag ? CLI_EXIT_FAIL : CLI_EXIT_OK; /* --stop-after is a planned stop */
    }
    return CLI_EXIT_OK;
}

/* MPI ranks 1..K-1: load the data, then train what rank 0 sends until it says stop. A data set
 * that does not load is reported to rank 0, which stops the whole search with the message. */
static int search_worker(const char *command, const dist_search_config *mc, const srch_cifar_child_config *cc) {
    srch_cifar_child *child = NULL;
    int loaded = srch_cifar_child_new(cc, &child) == ND_OK;
    srch_child_trainer trainer;
    if (loaded) trainer = srch_cifar_child_trainer(child);
    int rc = dist_search_worker_main(mc, loaded ? &trainer : NULL, loaded ? NULL : nd_last_error());
    srch_cifar_child_free(child);
    if (rc) return cli_fail(command);
    return loaded ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int search_main(int argc, char **argv);

/* MPI (when built with it and started by mpirun) lives for the whole command. */
int cli_cmd_search(int argc, char **argv) {
    int code = search_main(argc, argv);
    dist_finalize();
    return code;
}

static int search_main(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *strategy = "ppo", *space = "nasnet-a", *c_optimizer = "sgd", *c_init = "tf-slim",
               *device = "cpu";
    int64_t children = 100, batch = 20, seed = 1, hidden = 100, top_k = 25, stop_after = 0;
    int64_t c_epochs = 1, c_steps = 0, c_n = 2, c_f = 8, c_batch = 64, c_subset = 0, c_val = 5000, c_val_subset = 0;
    int64_t c_threads = 0, ppo_epochs = 4, max_attempts = 3;
    double job_timeout = 0, worker_grace = 60, c_lr = 0.05, c_wd = 5e-4, lr = 0.00035, clip = 0.2, ent = 1e-5;
    int resume = 0, plot = 0;
    const char *rank = NULL;
    int64_t seeds = 3;
    nd_opt opts[] = {
        {"data", ND_OPT_STRING, &data, "CIFAR-format training set: cifar:DIR (e.g. from `nasdet data digits-cls`)",
         NULL, "cifar:DIR"},
        {"out", ND_OPT_STRING, &out, "run folder (with --plot: the PNG to write)", NULL, "RUN"},
        {"strategy", ND_OPT_CHOICE, &strategy, "how architectures are chosen", "ppo|reinforce|random", NULL},
        {"children", ND_OPT_INT, &children, "total children of the run (a resumed run may raise it)", NULL, "K"},
        {"batch", ND_OPT_INT, &batch, "architectures per controller update", NULL, "B"},
        {"seed", ND_OPT_INT, &seed, "fixes the architectures sampled and every child's training", NULL, "S"},
        {"resume", ND_OPT_FLAG, &resume, "continue the search in --out", NULL, NULL},
        {"child-epochs", ND_OPT_INT, &c_epochs, "child training epochs over its training part", NULL, "E"},
        {"child-steps", ND_OPT_INT, &c_steps, "child SGD steps instead of epochs (0: use --child-epochs)", NULL,
         "S"},
        {"child-N", ND_OPT_INT, &c_n, "child: normal cells per stack", NULL, "N"},
        {"child-F", ND_OPT_INT, &c_f, "child: filters of the first stack", NULL, "F"},
        {"child-batch", ND_OPT_INT, &c_batch, "child: images per SGD step", NULL, "B"},
        {"child-train-subset", ND_OPT_INT, &c_subset, "child: training images used (0: all but the validation part)",
         NULL, "n"},
        {"child-val", ND_OPT_INT, &c_val, "held-out validation images at the end of the training set", NULL, "n"},
        {"child-val-subset", ND_OPT_INT, &c_val_subset, "validation images scored per child (0: all)", NULL, "n"},
        {"child-lr", ND_OPT_DOUBLE, &c_lr, "child: initial learning rate (cosine to 0)", NULL, "LR"},
        {"child-optimizer", ND_OPT_CHOICE, &c_optimizer, "child: SGD (Nesterov momentum 0.9) or Adam", "sgd|adam", NULL},
        {"child-init", ND_OPT_CHOICE, &c_init, "child: initial conv weights (see nasdet train --init)",
         "tf-slim|torch", NULL},
        {"child-wd", ND_OPT_DOUBLE, &c_wd, "child: weight decay", NULL, "WD"},
        {"threads", ND_OPT_INT, &c_threads, "threads for child training (0: all cores)", NULL, "T"},
        {"device", ND_OPT_STRING, &device, "where children train: cpu, cuda or cuda:N (needs a CUDA=1 build)", NULL, "DEV"},
        {"space", ND_OPT_CHOICE, &space, "search space", "nasnet-a|nasnet-b|nasnet-c", NULL},
        {"hidden", ND_OPT_INT, &hidden, "controller LSTM units", NULL, "H"},
        {"lr", ND_OPT_DOUBLE, &lr, "controller Adam learning rate", NULL, "LR"},
        {"clip", ND_OPT_DOUBLE, &clip, "PPO clip epsilon", NULL, "EPS"},
        {"ppo-epochs", ND_OPT_INT, &ppo_epochs, "PPO passes over each batch", NULL, "E"},
        {"entropy-weight", ND_OPT_DOUBLE, &ent, "entropy bonus weight", NULL, "W"},
        {"top-k", ND_OPT_INT, &top_k, "children listed in top.json", NULL, "K"},
        {"stop-after", ND_OPT_INT, &stop_after, "stop (resumably) after this many children in this call (0: never)",
         NULL, "n"},
        {"plot", ND_OPT_FLAG, &plot, "compare the run folders given as arguments in one PNG (--out)", NULL, NULL},
        {"rank", ND_OPT_STRING, &rank, "train these genotypes as children and print their rewards (no search)", NULL,
         "G1,G2"},
        {"seeds", ND_OPT_INT, &seeds, "with --rank: children per genotype (seeds 1..n)", NULL, "n"},
        {"job-timeout", ND_OPT_DOUBLE, &job_timeout,
         "MPI: seconds a child may train before its worker kills it and the job is re-queued (0: no limit)", NULL,
         "SEC"},
        {"worker-grace", ND_OPT_DOUBLE, &worker_grace, "MPI: seconds beyond --job-timeout before rank 0 gives up a "
         "worker rank that sends nothing (its job is re-queued)", NULL, "SEC"},
        {"max-attempts", ND_OPT_INT, &max_attempts, "MPI: hand-outs of a job whose worker died before it is "
         "logged as failed", NULL, "n"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    if (plot) {
        code = plot_runs(argv[0], &args, out);
        nd_args_free(&args);
        return code;
    }
    if (args.npositional) {
        code = cli_error(argv[0], CLI_EXIT_USAGE, "unexpected argument \"%s\"\nusage: %s", args.positional[0], usage);
        nd_args_free(&args);
        return code;
    }
    nd_args_free(&args);
    if (!data) return cli_error(argv[0], CLI_EXIT_USAGE, "--data cifar:DIR is required\nusage: %s", usage);
    if (!out && !rank) return cli_error(argv[0], CLI_EXIT_USAGE, "--out RUN is required\nusage: %s", usage);
    if (!strncmp(data, "cifar:", 6)) data += 6;
    else if (strchr(data, ':'))
        return cli_error(argv[0], CLI_EXIT_USAGE, "--data %s: only CIFAR-format sets (cifar:DIR) are searched on",
                         data);
    struct {
        const char *name;
        int64_t v, lo, hi;
    } ranges[] = {{"children", children, 1, 10000000}, {"batch", batch, 1, 100000},
                  {"hidden", hidden, 1, 4096},       {"top-k", top_k, 1, 100000},
                  {"child-N", c_n, 1, 64},           {"child-F", c_f, 2, 4096},
                  {"child-batch", c_batch, 1, 65536}, {"child-epochs", c_epochs, 1, 100000},
                  {"child-steps", c_steps, 0, INT64_MAX / 2}, {"child-train-subset", c_subset, 0, INT64_MAX / 2},
                  {"child-val", c_val, 1, INT64_MAX / 2}, {"child-val-subset", c_val_subset, 0, INT64_MAX / 2},
                  {"ppo-epochs", ppo_epochs, 1, 1000}, {"threads", c_threads, 0, 4096},
                  {"stop-after", stop_after, 0, INT64_MAX / 2}, {"seed", seed, 0, INT64_MAX},
                  {"seeds", seeds, 1, 1000}, {"max-attempts", max_attempts, 1, 1000}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].v < ranges[i].lo || ranges[i].v > ranges[i].hi)
            return cli_error(argv[0], CLI_EXIT_USAGE, "--%s %lld: expected %lld..%lld", ranges[i].name,
                             (long long)ranges[i].v, (long long)ranges[i].lo, (long long)ranges[i].hi);
    if (!(job_timeout >= 0) || !(worker_grace >= 0))
        return cli_error(argv[0], CLI_EXIT_USAGE, "--job-timeout and --worker-grace must be >= 0");
    if (!(lr > 0) || !(clip > 0) || !(ent >= 0) || !(c_lr > 0) || !(c_wd >= 0))
        return cli_error(argv[0], CLI_EXIT_USAGE, "--lr, --clip and --child-lr must be > 0, --entropy-weight and "
                         "--child-wd >= 0");

    srch_driver_config dc;
    srch_driver_config_default(&dc);
    srch_space sp;
    if (srch_strategy_from_name(strategy, &dc.strategy) || srch_space_from_name(space, &sp)) return cli_fail(argv[0]);
    dc.space = sp.kind;
    dc.run_dir = out;
    dc.children = children;
    dc.batch = (int)batch;
    dc.seed = (uint64_t)seed;
    dc.hidden = (int)hidden;
    dc.top_k = (int)top_k;
    dc.stop_after = stop_after;
    dc.policy.lr = lr;
    dc.policy.clip_eps = clip;
    dc.policy.epochs = (int)ppo_epochs;
    dc.policy.entropy_weight = ent;

    srch_cifar_child_config cc;
    srch_cifar_child_config_default(&cc);
    cc.data_dir = data;
    cc.n_cells = (int)c_n;
    cc.filters = (int)c_f;
    cc.batch = (int)c_batch;
    cc.epochs = (int)c_epochs;
    cc.steps = c_steps;
    cc.train_subset = c_subset;
    cc.val = c_val;
    cc.val_subset = c_val_subset;
    cc.adam = !strcmp(c_optimizer, "adam");
    cc.lr = c_lr;
    nas_conv_init_parse(c_init, &cc.conv_init); /* the option parser allows only valid names */
    cc.weight_decay = c_wd;
    cc.threads = (int)c_threads;
    cc.device = device;
    /* An unusable device is a setting error, not a child that fails: without this check every
     * child would be logged with reward 0 and the search would "finish". */
    nn_ctx *probe = nn_ctx_new();
    int device_rc = nn_ctx_set_backend(probe, device);
    nn_ctx_free(probe);
    if (device_rc) return cli_fail(argv[0]);
    char *desc = srch_cifar_child_describe(&cc);
    if (!desc) return cli_error(argv[0], CLI_EXIT_FAIL, "out of memory");
    dc.child_desc = desc;

    if (dist_init()) {
        free(desc);
        return cli_fail(argv[0]);
    }
    if (dist_size() > 1) {
        if (rank) {
            free(desc);
            return cli_error(argv[0], CLI_EXIT_USAGE, "--rank runs in one process, not under mpirun -np %d",
                             dist_size());
        }
        dist_search_config mc;
        dist_search_config_default(&mc);
        mc.job_timeout = job_timeout;
        mc.grace = worker_grace;
        mc.max_attempts = (int)max_attempts;
        mc.child_desc = desc;
        code = dist_size() > 1 && dist_rank() > 0 ? search_worker(argv[0], &mc, &cc)
                                                  : search_run(argv[0], &dc, &mc, NULL, out, children, 0.0, resume);
        free(desc);
        return code;
    }
    double t0 = nd_time_now();
    srch_cifar_child *child;
    if (srch_cifar_child_new(&cc, &child)) {
        free(desc);
        return cli_fail(argv[0]);
    }
    double load_seconds = nd_time_now() - t0;
    if (rank) {
        code = rank_genotypes(argv[0], rank, seeds, child);
        srch_cifar_child_free(child);
        free(desc);
        return code;
    }
    srch_child_trainer trainer = srch_cifar_child_trainer(child);
    code = search_run(argv[0], &dc, NULL, &trainer, out, children, load_seconds, resume);
    srch_cifar_child_free(child);
    free(desc);
    return code;
}
