/* nasdet eval: COCO evaluation of a results file against a ground-truth file. */
#include "cli/cli.h"
#include "common/fileio.h"
#include "common/status.h"
#include "eval/cocoeval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "nasdet eval --gt GT.json --dt RESULTS.json [--iou-type bbox|segm|keypoints] [--json OUT.json]\n"
    "            [--per-class] [--use-cats 0|1] [--img-ids 1,2,...] [--cat-ids 1,3,...]\n"
    "            [--max-dets 1,10,100] [--iou-thrs .5,.75] [--area-rng 0:1e10,0:1024,...]\n"
    "            [--kpt-sigmas .026,.025,...] [--threads N] [--timing]";
static const char *DESCRIPTION =
    "Evaluate detection results (COCO results JSON: a list, or a dict with an \"annotations\" list)\n"
    "against COCO ground truth, with exactly pycocotools' COCOeval numbers, and print its summary.\n"
    "--area-rng takes one lo:hi range per area label (all, small, medium, large; keypoints: all,\n"
    "medium, large). --timing prints load/evaluate/accumulate times to stderr.";

/* "lo:hi,lo:hi,..." -> 2n doubles */
static int parse_area(const char *text, double **out, int *n) {
    double *v;
    int c;
    char *copy = strdup(text);
    if (!copy) return nd_fail(ND_ERR_NOMEM, "out of memory");
    for (char *p = copy; *p; p++)
        if (*p == ':') *p = ',';
    int rc = nd_parse_double_list(copy, &v, &c);
    free(copy);
    if (rc) return rc;
    if (c == 0 || c % 2) {
        free(v);
        return nd_fail(ND_ERR_INVALID, "--area-rng: expected lo:hi pairs separated by commas, got '%s'", text);
    }
    *out = v;
    *n = c / 2;
    return 0;
}

static int ints_to_doubles(const char *opt, const char *text, double **out, int *n) {
    int64_t *v;
    int c;
    if (nd_parse_int_list(text, &v, &c)) return nd_fail_context(ND_ERR_INVALID, "%s: ", opt);
    *out = malloc(sizeof(double) * (size_t)(c + 1));
    if (!*out) { free(v); return nd_fail(ND_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < c; i++) (*out)[i] = (double)v[i];
    *n = c;
    free(v);
    return 0;
}

int cli_cmd_eval(int argc, char **argv) {
    const char *gt_path = NULL, *dt_path = NULL, *json_out = NULL, *iou_type = "bbox";
    const char *img_ids = NULL, *cat_ids = NULL, *max_dets = NULL, *iou_thrs = NULL, *area_rng = NULL;
    const char *kpt_sigmas = NULL;
    int per_class = 0, timing = 0;
    int64_t use_cats = 1, threads = 0;
    nd_opt opts[] = {
        {"gt", ND_OPT_STRING, &gt_path, "ground truth (COCO instances/keypoints JSON)", NULL, "FILE"},
        {"dt", ND_OPT_STRING, &dt_path, "results to evaluate (COCO results JSON)", NULL, "FILE"},
        {"iou-type", ND_OPT_CHOICE, &iou_type, "what to compare", "bbox|segm|keypoints", NULL},
        {"json", ND_OPT_STRING, &json_out, "also write stats and per-category AP as JSON", NULL, "FILE"},
        {"per-class", ND_OPT_FLAG, &per_class, "print AP, AP50, AP75, AR per category", NULL, NULL},
        {"use-cats", ND_OPT_INT, &use_cats, "1: per category; 0: categories pooled", NULL, "0|1"},
        {"img-ids", ND_OPT_STRING, &img_ids, "evaluate only these image ids (default: all)", NULL, "LIST"},
        {"cat-ids", ND_OPT_STRING, &cat_ids, "evaluate only these category ids (default: all)", NULL, "LIST"},
        {"max-dets", ND_OPT_STRING, &max_dets, "detections per image (default 1,10,100; keypoints 20)", NULL, "LIST"},
        {"iou-thrs", ND_OPT_STRING, &iou_thrs, "IoU thresholds (default .50:.05:.95)", NULL, "LIST"},
        {"area-rng", ND_OPT_STRING, &area_rng, "area ranges lo:hi, one per label", NULL, "LIST"},
        {"kpt-sigmas", ND_OPT_STRING, &kpt_sigmas, "keypoint OKS sigmas (default: COCO's 17 person sigmas)", NULL,
         "LIST"},
        {"threads", ND_OPT_INT, &threads, "OpenMP threads (0: all cores)", NULL, "N"},
        {"timing", ND_OPT_FLAG, &timing, "print timings and peak memory to stderr", NULL, NULL},
    };
    nd_args args;
    int code;
    if (cli_parse(argc, argv, USAGE, DESCRIPTION, opts, (int)(sizeof opts / sizeof *opts), &args, &code)) return code;
    int npos = args.npositional;
    nd_args_free(&args);
    if (npos) return cli_error(argv[0], CLI_EXIT_USAGE, "unexpected positional argument (see 'nasdet eval --help')");
    if (!gt_path || !dt_path) return cli_error(argv[0], CLI_EXIT_USAGE, "--gt and --dt are required (see 'nasdet eval --help')");
    if (use_cats != 0 && use_cats != 1) return cli_error(argv[0], CLI_EXIT_USAGE, "--use-cats: expected 0 or 1");
    if (threads < 0 || threads > 4096) return cli_error(argv[0], CLI_EXIT_USAGE, "--threads: expected 0..4096");

    ceval_params p;
    ceval_params_init(&p, (ceval_iou_type)ceval_iou_type_parse(iou_type));
    p.use_cats = (int)use_cats;
    p.num_threads = (int)threads;
    double *imgs = NULL, *cats = NULL, *thrs = NULL, *areas = NULL, *sigmas = NULL;
    int64_t *md = NULL;
    int n, rc = 0;
    if (img_ids && !rc) { rc = ints_to_doubles("--img-ids", img_ids, &imgs, &n); p.img_ids = imgs; p.n_img_ids = n; }
    if (cat_ids && !rc) { rc = ints_to_doubles("--cat-ids", cat_ids, &cats, &n); p.cat_ids = cats; p.n_cat_ids = n; }
    if (max_dets && !rc) {
        rc = nd_parse_int_list(max_dets, &md, &n);
        if (rc) nd_fail_context(rc, "--max-dets: ");
        p.max_dets = md;
        p.n_max_dets = n;
    }
    if (iou_thrs && !rc) {
        rc = nd_parse_double_list(iou_thrs, &thrs, &n);
        if (rc) nd_fail_context(rc, "--iou-thrs: ");
        p.iou_thrs = thrs;
        p.n_iou_thrs = n;
    }
    if (area_rng && !rc) { rc = parse_area(area_rng, &areas, &n); p.area_rng = areas; p.n_area_rng = n; }
    if (kpt_sigmas && !rc) {
        rc = nd_parse_double_list(kpt_sigmas, &sigmas, &n);
        if (rc) nd_fail_context(rc, "--kpt-sigmas: ");
        p.kpt_sigmas = sigmas;
        p.n_kpt_sigmas = n;
    }
    if (rc) {
        fprintf(stderr, "nasdet %s: error: %s\n", argv[0], nd_last_error());
        free(imgs); free(cats); free(thrs); free(areas); free(md); free(sigmas);
        return CLI_EXIT_USAGE;
    }

    ceval_gt *gt = NULL;
    ceval_dets *dt = NULL;
    ceval_result *r = NULL;
    double t0 = nd_time_now(), t1 = 0, t2 = 0;
    code = CLI_EXIT_OK;
    if (ceval_gt_load(gt_path, &gt)) code = cli_fail(argv[0]);
    t1 = nd_time_now();
    if (code == CLI_EXIT_OK && ceval_dets_load(gt, dt_path, &dt)) code = cli_fail(argv[0]);
    t2 = nd_time_now();
    if (code == CLI_EXIT_OK && ceval_evaluate(gt, dt, &p, &r)) code = cli_fail(argv[0]);
    if (code == CLI_EXIT_OK) {
        char *text = ceval_summary_text(r);
        if (!text) code = cli_fail(argv[0]);
        else { fputs(text, stdout); free(text); }
    }
    if (code == CLI_EXIT_OK && per_class) {
        char *text = ceval_per_class_text(r);
        if (!text) code = cli_fail(argv[0]);
        else { printf("\n%s", text); free(text); }
    }
    if (code == CLI_EXIT_OK && json_out && ceval_result_write_json(r, json_out)) code = cli_fail(argv[0]);
    if (code == CLI_EXIT_OK && timing) {
        long peak_kb = 0;
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "VmHWM:", 6) == 0) peak_kb = strtol(line + 6, NULL, 10);
        if (f) fclose(f);
        fprintf(stderr, "timing: load_gt %.3f s  load_dt %.3f s  evaluate %.3f s  accumulate %.3f s  peak_rss %.1f MB\n",
                t1 - t0, t2 - t1, r->seconds_evaluate, r->seconds_accumulate, peak_kb / 1024.0);
    }
    fflush(stdout);
    ceval_result_free(r);
    ceval_dets_free(dt);
    ceval_gt_free(gt);
    free(imgs); free(cats); free(thrs); free(areas); free(md); free(sigmas);
    return code;
}
