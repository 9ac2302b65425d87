<?php
// `php run.php COMMAND JSON`: one breaker action against Redis, printed as one JSON line.
//   call   {"key", "fail": bool}   a guarded call that succeeds or fails
//   trip   {"key"}                 an operator's trip (forced open)
//   state  {"key"}
// Connection: REDIS_HOST, REDIS_PORT; the scripts: GUARD_BREAKER_SCRIPTS.

declare(strict_types=1);

require_once __DIR__ . '/CircuitBreaker.php';

$args = json_decode($argv[2] ?? '{}', true, 8, JSON_THROW_ON_ERROR);
$redis = new RedisConnection(getenv('REDIS_HOST') ?: '127.0.0.1', (int) (getenv('REDIS_PORT') ?: 6379));
$breaker = new CircuitBreaker(
    $redis,
    getenv('GUARD_BREAKER_SCRIPTS'),
    $args['key'],
    ['failure_threshold' => $args['failure_threshold'] ?? 3, 'success_threshold' => 1,
     'cooldown_ms' => $args['cooldown_ms'] ?? 60000],
);
try {
    switch ($argv[1] ?? '') {
        case 'call':
            $calls = 0;
            $result = $breaker->call(function () use ($args, &$calls) {
                $calls++;
                usleep((int) (($args['seconds'] ?? 0) * 1e6));
                if (!empty($args['fail'])) {
                    throw new RuntimeException('calendar unavailable');
                }
                return 'ok';
            });
            echo json_encode(['result' => $result, 'called' => $calls]), "\n";
            break;
        case 'trip':
            $reply = $breaker->trip($args['reason'] ?? 'tripped from php');
            echo json_encode(['code' => $reply[0], 'state' => CircuitBreaker::STATES[$reply[1]]]), "\n";
            break;
        default:
            throw new InvalidArgumentException('unknown command');
    }
} catch (CircuitOpenException $open) {
    echo json_encode(['refused' => $open->getMessage()]), "\n";
} catch (RuntimeException $error) {
    echo json_encode(['error' => $error->getMessage()]), "\n";
}
