using System.Buffers;
using System.Reflection;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Calls one method fast, again and again: built once per method with the method's own types, it
/// calls through a typed delegate (no reflection per call) and serializes the result as the declared
/// return type straight into the reply.
/// </summary>
internal abstract class MethodRunner(MethodInfo method)
{
    /// <summary>The method's declaring type (the closure type for lambdas).</summary>
    public Type DeclaringType { get; } = method.DeclaringType!;

    /// <summary>The method's return type.</summary>
    public Type ResultType { get; } = method.ReturnType;

    /// <summary>True for instance methods, which need a target.</summary>
    public bool NeedsTarget { get; } = !method.IsStatic;

    /// <summary>How the target is read, kept here once looked up (set by the first call that reads one).</summary>
    public ClosureSerializer.ClosureReader? TargetReader { get; set; }

    /// <summary>Invokes the method on <paramref name="target"/> and writes the successful reply.</summary>
    public abstract void Run(object? target, ArrayBufferWriter<byte> output);

    /// <summary>
    /// Takes the path of a call without calling the method (for a template sandbox: the interpreter compiles the
    /// runner's code for this method's types, so a new sandbox's first call does not): an instance runner given no
    /// target writes the default result. Other runners do nothing here.
    /// </summary>
    public void Rehearse(ArrayBufferWriter<byte> scratch)
    {
        if (NeedsTarget && this is not ReflectionRunner)
        {
            scratch.ResetWrittenCount();
            Run(null, scratch);
        }
    }

    /// <summary>
    /// True when writing <paramref name="type"/>'s default value runs none of the user's code: null for a class
    /// (unless the class names its own formatter), a primitive, an enum, a null <see cref="Nullable{T}"/>, or a
    /// struct of the core library whose type arguments are all inert themselves. A user struct is not: its
    /// formatter reads its properties, which are the user's code; nor is <c>(UserStruct, int)</c>.
    /// </summary>
    internal static bool DefaultIsInert(Type type)
    {
        if (!type.IsValueType)
        {
            return !type.IsDefined(typeof(MessagePackFormatterAttribute), inherit: true);
        }
        if (type.IsPrimitive || type.IsEnum || Nullable.GetUnderlyingType(type) is not null)
        {
            return true;
        }
        return type.Assembly == typeof(object).Assembly && (!type.IsGenericType || type.GetGenericArguments().All(DefaultIsInert));
    }

    /// <summary>Builds the runner for <paramref name="method"/>, a parameterless method.</summary>
    public static MethodRunner Create(MethodInfo method)
    {
        var type = method.DeclaringType!;
        var returnsValue = method.ReturnType != typeof(void);
        if (ResultWriter.IsTaskLike(method.ReturnType))
        {
            // Async lambdas: rare enough that reflection is fine; the result may be a pending task.
            return new ReflectionRunner(method);
        }
        Type runnerType;
        if (method.IsStatic)
        {
            runnerType = returnsValue ? typeof(StaticFuncRunner<>).MakeGenericType(method.ReturnType) : typeof(StaticActionRunner);
        }
        else if (type.IsValueType)
        {
            // Rare (a method group on a struct): fall back to reflection.
            return new ReflectionRunner(method);
        }
        else
        {
            runnerType = returnsValue
                ? typeof(InstanceFuncRunner<,>).MakeGenericType(type, method.ReturnType)
                : typeof(InstanceActionRunner<>).MakeGenericType(type);
        }
        return (MethodRunner)Activator.CreateInstance(runnerType, method)!;
    }

    private static void WriteResult<T>(ArrayBufferWriter<byte> output, T value)
    {
        if (PrimitiveValueWriter.TryWriteSuccess(output, value))
        {
            return;
        }
        var writer = new MessagePackWriter(output);
        Replies.BeginSuccess(ref writer);
        MessagePackSerializer.Serialize(ref writer, value, IsolatedSerializer.Options);
        writer.Flush();
    }

    private sealed class StaticFuncRunner<TResult> : MethodRunner
    {
        private readonly Func<TResult> _call;

        public StaticFuncRunner(MethodInfo method) : base(method)
        {
            _call = method.CreateDelegate<Func<TResult>>();
        }

        public override void Run(object? target, ArrayBufferWriter<byte> output) => WriteResult(output, _call());
    }

    private sealed class StaticActionRunner : MethodRunner
    {
        private readonly Action _call;

        public StaticActionRunner(MethodInfo method) : base(method)
        {
            _call = method.CreateDelegate<Action>();
        }

        public override void Run(object? target, ArrayBufferWriter<byte> output)
        {
            _call();
            Replies.WriteEmptySuccess(output);
        }
    }

    private sealed class InstanceFuncRunner<TTarget, TResult> : MethodRunner where TTarget : class
    {
        private readonly Func<TTarget, TResult> _call;

        private static readonly bool s_defaultIsInert = DefaultIsInert(typeof(TResult));

        public InstanceFuncRunner(MethodInfo method) : base(method)
        {
            _call = method.CreateDelegate<Func<TTarget, TResult>>();
        }

        public override void Run(object? target, ArrayBufferWriter<byte> output)
        {
            if (target is null)
            {
                // A rehearsal (see Rehearse): the path a call takes, without calling the method. A default value whose
                // writing would run the user's code is not written (see DefaultIsInert).
                if (s_defaultIsInert)
                {
                    WriteResult(output, default(TResult));
                }
                return;
            }
            WriteResult(output, _call((TTarget)target));
        }
    }

    private sealed class InstanceActionRunner<TTarget> : MethodRunner where TTarget : class
    {
        private readonly Action<TTarget> _call;

        public InstanceActionRunner(MethodInfo method) : base(method)
        {
            _call = method.CreateDelegate<Action<TTarget>>();
        }

        public override void Run(object? target, ArrayBufferWriter<byte> output)
        {
            if (target is not null)
            {
                _call((TTarget)target);
            }
            Replies.WriteEmptySuccess(output);
        }
    }

    private sealed class ReflectionRunner(MethodInfo method) : MethodRunner(method)
    {
        private readonly MethodInfo _method = method;

        public override void Run(object? target, ArrayBufferWriter<byte> output)
        {
            var result = _method.Invoke(target, BindingFlags.DoNotWrapExceptions, binder: null, parameters: null, culture: null);
            ResultWriter.Write(output, result, _method.ReturnType, ResultMode.Value);
        }
    }
}
