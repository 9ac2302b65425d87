<?php
// The test suite's entry point: `php run.php COMMAND [JSON]` runs one of the application's
// services and prints its result as one JSON line. An error prints {"error": ..., "sqlstate": ...}
// and exits 1.

declare(strict_types=1);

require_once __DIR__ . '/bootstrap.php';
require_once __DIR__ . '/migrations.php';

use Illuminate\Database\Capsule\Manager as Capsule;
use Illuminate\Database\ConnectionResolver;
use Illuminate\Database\Migrations\DatabaseMigrationRepository;

$capsule = boot_database();
$command = $argv[1] ?? '';
$args = json_decode($argv[2] ?? '{}', true, 16, JSON_THROW_ON_ERROR);

function call_state(int $id): array
{
    $call = Call::query()->findOrFail($id);
    return [
        'appointment_made' => $call->appointment_made,
        'session_outcome' => $call->session_outcome,
        'booking_id' => $call->booking_id,
        'active_appointments' => Appointment::query()->where('call_id', $id)
            ->where('status', '!=', 'cancelled')->count(),
    ];
}

function calendar(array $args): callable
{
    return function (string $key) use ($args): array {
        usleep((int) (($args['calendar_seconds'] ?? 0) * 1e6));
        if (!empty($args['calendar_fails'])) {
            throw new RuntimeException('calendar unavailable');
        }
        return ['uid' => $args['uid'] ?? ('uid-' . $key), 'starts_at' => $args['starts_at'] ?? null,
                'ends_at' => $args['ends_at'] ?? null, 'details' => ['key' => $key]];
    };
}

try {
    switch ($command) {
        case 'migrate':
            $resolver = new ConnectionResolver(['default' => Capsule::connection()]);
            $resolver->setDefaultConnection('default');
            $repository = new DatabaseMigrationRepository($resolver, 'migrations');
            $repository->createRepository();
            (new CreateBookingTables())->up();
            $repository->log(CreateBookingTables::NAME, 1);
            $result = ['migrated' => $repository->getRan()];
            break;
        case 'seed':  // a company with a customer, a service and the calls that arrived
            $company = Company::create(['name' => $args['company'] ?? 'Praxis']);
            $customer = Customer::create(['company_id' => $company->id, 'name' => 'Kunde']);
            $service = Service::create(['company_id' => $company->id, 'name' => 'Termin']);
            $calls = [];
            for ($i = 0; $i < ($args['calls'] ?? 1); $i++) {
                $calls[] = Call::create([
                    'company_id' => $company->id,
                    'retell_call_id' => uniqid('retell_', true),
                    'status' => 'ended',
                    'customer_id' => $customer->id,
                ])->id;
            }
            $result = ['company' => $company->id, 'customer' => $customer->id,
                       'service' => $service->id, 'calls' => $calls];
            break;
        case 'book':
            $result = BookingPath::book((int) $args['call'], (int) $args['service'], calendar($args),
                                        (float) ($args['wait_seconds'] ?? 5));
            $result['call'] = call_state((int) $args['call']);
            break;
        case 'recover':  // the reconciliation service, against a calendar holding `calendar` (key => uid)
            $calendar = $args['calendar'] ?? [];
            $result = BookingPath::recover(
                fn (string $key): ?array => isset($calendar[$key]) ? ['uid' => $calendar[$key]] : null,
                $args['older_than_seconds'] ?? null
            );
            break;
        case 'cancel':  // the caller cancels: the appointment is cancelled in one transaction
            Capsule::connection()->transaction(function () use ($args) {
                Appointment::query()->where('call_id', $args['call'])->update(['status' => 'cancelled']);
            });
            $result = ['call' => call_state((int) $args['call'])];
            break;
        case 'soft-delete':
            Appointment::query()->where('call_id', $args['call'])->firstOrFail()->delete();
            $deleted = call_state((int) $args['call']);
            Appointment::withTrashed()->where('call_id', $args['call'])->firstOrFail()->restore();
            $result = ['deleted' => $deleted, 'restored' => call_state((int) $args['call'])];
            break;
        case 'claim-booking':  // the voice agent says it booked: Eloquent stamps updated_at
            Call::query()->findOrFail($args['call'])->update(
                ['appointment_made' => true, 'session_outcome' => 'appointment_booked']
            );
            $result = ['call' => call_state((int) $args['call'])];
            break;
        case 'update-call':  // a plain Eloquent write of any call, as a bound login would try
            $result = ['updated' => Call::query()->whereKey($args['call'])->update($args['set'])];
            break;
        case 'count-active':  // a call's active appointments and booking uid
            $result = ['active' => call_state((int) $args['call'])['active_appointments'],
                       'booking_id' => call_state((int) $args['call'])['booking_id']];
            break;
        case 'count-calls':
            $result = ['calls' => Call::query()->count(), 'customers' => Customer::query()->count()];
            break;
        default:
            throw new InvalidArgumentException("unknown command: $command");
    }
    echo json_encode($result), "\n";
} catch (Throwable $error) {
    $state = $error instanceof PDOException ? ($error->errorInfo[0] ?? null) : null;
    $previous = $error->getPrevious();
    if ($state === null && $previous instanceof PDOException) {
        $state = $previous->errorInfo[0] ?? null;
    }
    echo json_encode(['error' => get_class($error), 'sqlstate' => $state,
                      'message' => strtok($error->getMessage(), "\n")]), "\n";
    exit(1);
}
