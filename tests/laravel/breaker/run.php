<?php
// `php run.php COMMAND JSON`: breaker actions against Redis, printed as one JSON line.
//   call      {"key", "fail": bool, "seconds"}  a guarded call that succeeds or fails
//   trip      {"key"}                          an operator's trip (forced open)
//   scenario  {"key", "rules", "lease_ms", "steps"}  the steps of a state-machine scenario
//             (tests/laravel/test_php_breaker.py), one observation per step
// Connection: REDIS_HOST, REDIS_PORT; the scripts: GUARD_BREAKER_SCRIPTS.

declare(strict_types=1);

require_once __DIR__ . '/CircuitBreaker.php';

$args = json_decode($argv[2] ?? '{}', true, 8, JSON_THROW_ON_ERROR);
$redis = new RedisConnection(getenv('REDIS_HOST') ?: '127.0.0.1', (int) (getenv('REDIS_PORT') ?: 6379));
$rules = $args['rules'] ?? [
    'failure_threshold' => $args['failure_threshold'] ?? 3, 'success_threshold' => 1,
    'cooldown_ms' => $args['cooldown_ms'] ?? 60000,
];
$breaker = fn () => new CircuitBreaker(
    $redis, getenv('GUARD_BREAKER_SCRIPTS'), $args['key'], $rules, $args['lease_ms'] ?? 11000
);

/** One guarded call: "ok", "error" (the calendar's own) or "refused" (the circuit's). */
function guarded(CircuitBreaker $breaker, bool $fail, float $seconds = 0.0): string
{
    try {
        $breaker->call(function () use ($fail, $seconds) {
            usleep((int) ($seconds * 1e6));
            if ($fail) {
                throw new RuntimeException('calendar unavailable');
            }
            return 'ok';
        });
        return 'ok';
    } catch (CircuitOpenException) {
        return 'refused';
    } catch (RuntimeException $error) {
        if (str_starts_with($error->getMessage(), 'redis:')) {
            throw $error;
        }
        return 'error';
    }
}

/** @param list<list<string|int>> $steps @return list<string|null> */
function scenario(callable $newBreaker, array $steps): array
{
    $clients = [];
    $tickets = [];
    $observed = [];
    foreach ($steps as $step) {
        $client = is_string($step[1] ?? null) ? ($clients[$step[1]] ??= $newBreaker()) : null;
        $observed[] = match ($step[0]) {
            'call' => guarded($client, $step[2] === 'fail'),
            'acquire' => (function () use ($client, $step, &$tickets) {
                $tickets[$step[2]] = $client->acquire();
                return ['refused', 'call', 'probe'][$tickets[$step[2]][0]];
            })(),
            'release' => (function () use ($client, $step, $tickets) {
                [, , $generation, , , , , , $probe] = $tickets[$step[2]];
                $client->record((int) $generation, $step[3] === 'success' ? 1 : 0, (int) $probe);
                return 'released';
            })(),
            'sleep' => (function () use ($step) {
                usleep((int) $step[1] * 1000);
                return 'slept';
            })(),
            'state' => $client->state(),
            'trip' => CircuitBreaker::STATES[$client->control(3, 'scenario')[1]],
            'reset' => CircuitBreaker::STATES[$client->control(0, 'scenario')[1]],
        };
    }
    return $observed;
}

try {
    switch ($argv[1] ?? '') {
        case 'call':
            $outcome = guarded($breaker(), !empty($args['fail']), (float) ($args['seconds'] ?? 0));
            echo json_encode(match ($outcome) {
                'ok' => ['result' => 'ok', 'called' => 1],
                'refused' => ['refused' => "circuit {$args['key']} is open"],
                'error' => ['error' => 'calendar unavailable'],
            }), "\n";
            break;
        case 'trip':
            $reply = $breaker()->control(3, $args['reason'] ?? 'tripped from php');
            echo json_encode(['code' => $reply[0], 'state' => CircuitBreaker::STATES[$reply[1]]]), "\n";
            break;
        case 'scenario':
            echo json_encode(['observed' => scenario($breaker, $args['steps'])]), "\n";
            break;
        default:
            throw new InvalidArgumentException('unknown command');
    }
} catch (RuntimeException $error) {
    echo json_encode(['error' => $error->getMessage()]), "\n";
}
